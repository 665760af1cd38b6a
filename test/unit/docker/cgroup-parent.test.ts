// A daemon started with `--cgroup-parent` (or `cgroup-parent` in daemon.json) puts its containers
// under that parent while inspect keeps HostConfig.CgroupParent empty; the inventory learns the
// parent from the container's /proc/<pid>/cgroup (test/fixtures/proc-cgroup/README.md).
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ContainerMetrics } from '../../../src/collectors/containers.js';
import type { ApiContainerInspect } from '../../../src/docker/api-types.js';
import { cgroupParentFromProc } from '../../../src/docker/cgroup-path.js';
import { daemonCgroupParent, fromInspect } from '../../../src/docker/inventory.js';
import { FIXTURES, StaticSource, silentLogger } from '../collectors/helpers.js';

const PROC = fileURLToPath(new URL('../../fixtures/proc-cgroup/', import.meta.url));
const ID = 'c0ffee00'.repeat(8);

function inspect(pid: number, over: Partial<ApiContainerInspect> = {}): ApiContainerInspect {
  return {
    Id: ID,
    Name: '/web-1',
    Created: '2025-01-02T03:04:05Z',
    State: {
      Status: pid > 0 ? 'running' : 'exited',
      Pid: pid,
      StartedAt: '2025-01-02T03:04:06Z',
    },
    Config: { Image: 'nginx:1.27' },
    HostConfig: {},
    ...over,
  };
}

const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the daemon cgroup parent from /proc/<pid>/cgroup', () => {
  it('finds the parent of a cgroupfs container on a v1 host (dockerd --cgroup-parent /hm-ci)', () => {
    expect(daemonCgroupParent(inspect(101), PROC)).toBe('/hm-ci');
    const info = fromInspect(inspect(101), 'cgroupfs', daemonCgroupParent(inspect(101), PROC));
    expect(info.cgroup).toEqual({ v1: `/hm-ci/${ID}`, v2: `/hm-ci/${ID}` });
  });

  it('finds systemd scopes, under the default slice and under a nested --cgroup-parent slice', () => {
    expect(daemonCgroupParent(inspect(102), PROC)).toBe('/system.slice');
    expect(daemonCgroupParent(inspect(103), PROC)).toBe('/ci.slice/ci-agents.slice');
    const info = fromInspect(inspect(103), 'systemd', daemonCgroupParent(inspect(103), PROC));
    expect(info.cgroup.v2).toBe(`/ci.slice/ci-agents.slice/docker-${ID}.scope`);
  });

  it('learns nothing from a file that names no cgroup of this container', () => {
    // private cgroupns, a path relative to another namespace, another process
    for (const pid of [104, 105, 106])
      expect(daemonCgroupParent(inspect(pid), PROC)).toBe(undefined);
    // no such pid (the container exited meanwhile), not running, no proc_root given
    expect(daemonCgroupParent(inspect(999), PROC)).toBe(undefined);
    expect(daemonCgroupParent(inspect(0), PROC)).toBe(undefined);
    expect(daemonCgroupParent(inspect(101), undefined)).toBe(undefined);
    // without a learned parent: Docker's defaults
    expect(fromInspect(inspect(104), 'cgroupfs').cgroup.v1).toBe(`/docker/${ID}`);
    expect(fromInspect(inspect(104), 'systemd').cgroup.v1).toBe(`/system.slice/docker-${ID}.scope`);
  });

  it("a container's own --cgroup-parent wins over the daemon's", () => {
    const own = inspect(101, { HostConfig: { CgroupParent: '/mine' } });
    expect(daemonCgroupParent(own, PROC)).toBe(undefined);
    expect(fromInspect(own, 'cgroupfs', '/hm-ci').cgroup.v1).toBe(`/mine/${ID}`);
  });

  it('parses paths with ":" and ignores malformed lines', () => {
    const text = `garbage\n5:devices\n\n1:name=systemd:/a:b/${ID}\n`;
    expect(cgroupParentFromProc(text, ID)).toBe('/a:b');
    expect(cgroupParentFromProc(`0::/${ID}\n`, ID)).toBe('/');
    expect(fromInspect(inspect(1), 'cgroupfs', '/').cgroup.v1).toBe(`/${ID}`);
  });

  it('the collector reads the counters of a container under the learned parent', async () => {
    // the v1 fixture tree with the container moved from /docker to /hm-ci, as such a daemon has it
    const root = mkdtempSync(join(tmpdir(), 'hm-cgparent-'));
    tmp.push(root);
    cpSync(join(FIXTURES, 'v1-cgroupfs'), root, { recursive: true });
    const cg = join(root, 'sys/fs/cgroup');
    for (const h of readdirSync(cg)) {
      if (readdirSync(join(cg, h)).includes('docker'))
        renameSync(join(cg, h, 'docker'), join(cg, h, 'hm-ci'));
    }
    mkdirSync(join(root, 'proc/4242'), { recursive: true });
    writeFileSync(join(root, 'proc/4242/cgroup'), `4:memory:/hm-ci/${ID}\n0::/hm-ci/${ID}\n`);

    const seen = inspect(4242);
    const info = fromInspect(seen, 'cgroupfs', daemonCgroupParent(seen, join(root, 'proc')));
    const c = new ContainerMetrics({
      inventory: new StaticSource([info]),
      logger: silentLogger,
      registry: new Registry(),
      cgroupRoot: cg,
      procRoot: join(root, 'proc'),
      labelAllowlist: [],
      minIntervalMs: 0,
      disabled: ['root'],
    });
    c.start();
    const text = await c.render();
    // the same value as the golden file's /docker/<id> series of this tree
    expect(text).toContain(
      `container_memory_usage_bytes{id="/hm-ci/${ID}",image="nginx:1.27",name="web-1"} 52428800\n`,
    );
    // without the learned parent the agent would look in /docker and find nothing
    const blind = new ContainerMetrics({
      inventory: new StaticSource([fromInspect(seen, 'cgroupfs')]),
      logger: silentLogger,
      registry: new Registry(),
      cgroupRoot: cg,
      procRoot: join(root, 'proc'),
      labelAllowlist: [],
      minIntervalMs: 0,
      disabled: ['root'],
    });
    blind.start();
    expect(await blind.render()).not.toContain('container_memory_usage_bytes{');
  });
});
