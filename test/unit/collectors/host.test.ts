// Host metrics against this machine: machine_* from the real /proc (through systeminformation)
// compared with what Node reads itself, and the data-root filesystem from a real statfs.
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { HostMetrics } from '../../../src/collectors/host.js';
import { captureLogger } from '../../support/log-capture.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(os.tmpdir(), 'hm-host-'));
  dirs.push(d);
  return d;
}

async function values(registry: Registry, name: string) {
  return (await registry.getSingleMetric(name)?.get())?.values ?? [];
}

describe('host metrics', () => {
  it('reports the CPU count, memory, kernel, architecture and host name of this machine', async () => {
    const registry = new Registry();
    const { logger } = captureLogger();
    const h = new HostMetrics({ registry, logger, dockerRoot: tmp(), intervalMs: 0 });
    await h.start();
    expect((await values(registry, 'machine_cpu_cores'))[0]?.value).toBe(os.cpus().length);
    expect((await values(registry, 'machine_memory_bytes'))[0]?.value).toBe(os.totalmem());
    const info = await values(registry, 'machine_info');
    expect(info).toHaveLength(1);
    expect(info[0]?.value).toBe(1);
    expect(info[0]?.labels).toMatchObject({
      kernel_version: os.release(),
      architecture: os.arch(),
      hostname: os.hostname(),
      cpus: String(os.cpus().length),
      memory_bytes: String(os.totalmem()),
    });
    h.stop();
  });

  it("measures the data root's filesystem with statfs", async () => {
    const registry = new Registry();
    const root = tmp();
    const h = new HostMetrics({
      registry,
      logger: captureLogger().logger,
      dockerRoot: root,
      intervalMs: 0,
    });
    await h.start();
    const st = statfsSync(root);
    const size = await values(registry, 'docker_engine_data_root_size_bytes');
    expect(size).toEqual([{ labels: { path: root }, value: st.blocks * st.bsize }]);
    const free = (await values(registry, 'docker_engine_data_root_free_bytes'))[0];
    expect(free?.labels).toEqual({ path: root });
    // free space moves with other writers on this disk: within 1 GiB of our own reading
    expect(Math.abs((free?.value ?? -1) - st.bavail * st.bsize)).toBeLessThan(2 ** 30);
    h.stop();
  });

  it('leaves the data-root series out and warns, naming the path, when it does not exist', async () => {
    const registry = new Registry();
    const cap = captureLogger();
    const missing = join(tmp(), 'not-there');
    const h = new HostMetrics({ registry, logger: cap.logger, dockerRoot: missing, intervalMs: 0 });
    await h.start();
    expect(await values(registry, 'docker_engine_data_root_size_bytes')).toEqual([]);
    expect(await values(registry, 'docker_engine_data_root_free_bytes')).toEqual([]);
    // the machine facts do not depend on it
    expect((await values(registry, 'machine_cpu_cores'))[0]?.value).toBe(os.cpus().length);
    const warned = cap.lines().filter((l) => String(l.msg).includes(missing));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, path: missing });
    h.stop();
  });

  it('registers nothing when the host group is disabled', async () => {
    const registry = new Registry();
    const h = new HostMetrics({
      registry,
      logger: captureLogger().logger,
      dockerRoot: tmp(),
      intervalMs: 0,
      disabled: ['host'],
    });
    await h.start();
    expect((await registry.metrics()).trim()).toBe('');
    h.stop();
  });
});
