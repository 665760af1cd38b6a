// Engine metrics (docker_engine_*) through the real DockerClient against a unix-socket server that
// answers with the Engine API's JSON shapes: the cases a live daemon rarely shows (null arrays,
// shared build cache, a failing endpoint). The integration suite checks the same families
// against the private dockerd (test/integration/metrics.test.ts).
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineMetrics } from '../../../src/collectors/engine.js';
import { DockerClient } from '../../../src/docker/client.js';
import type { EngineInfo } from '../../../src/docker/inventory.js';
import { captureLogger } from '../../support/log-capture.js';
import { StaticSource, containerInfo } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

type Answer = { status: number; body: unknown };

/** An Engine API on a unix socket answering GET <path> from `answers` (404 otherwise). */
async function engineApi(
  answers: Record<string, Answer>,
): Promise<{ host: string; seen: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'hm-engine-'));
  const sock = join(dir, 'd.sock');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').replace(/^\/v\d+\.\d+/, '').split('?')[0] ?? '';
    seen.push(`${req.method} ${path}`);
    if (path === '/_ping') {
      res.writeHead(200, { 'API-Version': '1.41' }).end('OK');
      return;
    }
    const a = answers[path] ?? { status: 404, body: { message: `page not found: ${path}` } };
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { host: `unix://${sock}`, seen };
}

const ENGINE: EngineInfo = {
  apiVersion: '1.41',
  serverVersion: '20.10.24',
  storageDriver: 'overlay2',
  cgroupDriver: 'cgroupfs',
  cgroupVersion: '1',
  dockerRootDir: '/var/lib/docker',
  info: { OperatingSystem: 'Debian GNU/Linux 13 (trixie)', KernelVersion: '6.18.0' },
};

function inventory(engine: EngineInfo | null = ENGINE) {
  const src = new StaticSource([
    containerInfo({ id: 'a'.repeat(64), name: 'a', state: 'running' }),
    containerInfo({ id: 'b'.repeat(64), name: 'b', state: 'running' }),
    containerInfo({ id: 'c'.repeat(64), name: 'c', state: 'exited' }),
  ]);
  return Object.assign(src, { engine: () => engine ?? undefined });
}

async function gauge(
  registry: Registry,
  name: string,
): Promise<{ labels: Record<string, string | number | undefined>; value: number }[]> {
  return (await registry.getSingleMetric(name)?.get())?.values ?? [];
}

const ANSWERS: Record<string, Answer> = {
  '/info': { status: 200, body: { Images: 7 } },
  '/volumes': { status: 200, body: { Volumes: [{ Name: 'v1' }, { Name: 'v2' }], Warnings: null } },
  '/networks': { status: 200, body: [{ Name: 'none' }, { Name: 'host' }, { Name: 'bridge' }] },
  '/system/df': {
    status: 200,
    body: {
      LayersSize: 1000,
      Images: [],
      Containers: [{ SizeRw: 10 }, { SizeRw: 5 }, { SizeRw: -1 }],
      Volumes: [{ UsageData: { Size: 300, RefCount: 1 } }, { UsageData: { Size: -1 } }],
      BuildCache: [
        { Size: 40, Shared: false },
        { Size: 60, Shared: true },
      ],
    },
  },
};

describe('engine metrics', () => {
  it('reports engine facts, containers by state, counts and disk usage by type', async () => {
    const api = await engineApi(ANSWERS);
    const client = new DockerClient({ host: api.host });
    cleanups.push(() => client.close());
    const registry = new Registry();
    const e = new EngineMetrics({
      docker: client,
      inventory: inventory(),
      registry,
      logger: captureLogger().logger,
      countsIntervalMs: 0,
      diskUsageIntervalMs: 0,
    });
    await e.refreshCounts();
    await e.refreshDf();
    expect((await gauge(registry, 'docker_engine_info'))[0]).toEqual({
      labels: {
        version: '20.10.24',
        api_version: '1.41',
        storage_driver: 'overlay2',
        cgroup_driver: 'cgroupfs',
        cgroup_version: '1',
        operating_system: 'Debian GNU/Linux 13 (trixie)',
        kernel_version: '6.18.0',
      },
      value: 1,
    });
    const states: Record<string, number> = {};
    for (const v of await gauge(registry, 'docker_engine_containers'))
      states[String(v.labels.state)] = v.value;
    expect(states).toMatchObject({ running: 2, exited: 1, created: 0, paused: 0 });
    expect((await gauge(registry, 'docker_engine_images'))[0]?.value).toBe(7);
    expect((await gauge(registry, 'docker_engine_volumes'))[0]?.value).toBe(2);
    expect((await gauge(registry, 'docker_engine_networks'))[0]?.value).toBe(3);
    const df: Record<string, number> = {};
    for (const v of await gauge(registry, 'docker_engine_disk_usage_bytes'))
      df[String(v.labels.type)] = v.value;
    // -1 means "not computed" in the Engine API: never subtracted; shared build cache not counted
    expect(df).toEqual({ images: 1000, containers: 15, volumes: 300, build_cache: 40 });
    // only GET requests, only these paths
    expect(new Set(api.seen)).toEqual(
      new Set(['GET /_ping', 'GET /info', 'GET /volumes', 'GET /networks', 'GET /system/df']),
    );
  });

  it('reads null lists as empty', async () => {
    const api = await engineApi({
      '/info': { status: 200, body: { Images: 0 } },
      '/volumes': { status: 200, body: { Volumes: null, Warnings: null } },
      '/networks': { status: 200, body: [] },
      '/system/df': {
        status: 200,
        body: { LayersSize: 0, Images: null, Containers: null, Volumes: null, BuildCache: null },
      },
    });
    const client = new DockerClient({ host: api.host });
    cleanups.push(() => client.close());
    const registry = new Registry();
    const e = new EngineMetrics({
      docker: client,
      inventory: inventory(null),
      registry,
      logger: captureLogger().logger,
      countsIntervalMs: 0,
      diskUsageIntervalMs: 0,
    });
    await e.refreshCounts();
    await e.refreshDf();
    expect(await gauge(registry, 'docker_engine_info')).toEqual([]); // no engine info yet
    expect((await gauge(registry, 'docker_engine_volumes'))[0]?.value).toBe(0);
    expect((await gauge(registry, 'docker_engine_networks'))[0]?.value).toBe(0);
    const df = (await gauge(registry, 'docker_engine_disk_usage_bytes')).map((v) => v.value);
    expect(df).toEqual([0, 0, 0, 0]);
  });

  it('counts a failing request, logs it once and keeps the other counts', async () => {
    const api = await engineApi({
      ...ANSWERS,
      '/volumes': { status: 500, body: { message: 'volume store is broken' } },
    });
    const client = new DockerClient({ host: api.host });
    cleanups.push(() => client.close());
    const registry = new Registry();
    const cap = captureLogger();
    const e = new EngineMetrics({
      docker: client,
      inventory: inventory(),
      registry,
      logger: cap.logger,
      countsIntervalMs: 0,
      diskUsageIntervalMs: 0,
    });
    await e.refreshCounts();
    await e.refreshCounts();
    expect((await gauge(registry, 'docker_engine_images'))[0]?.value).toBe(7);
    expect(await gauge(registry, 'harbormaster_engine_metrics_errors_total')).toEqual([
      { labels: { request: 'volumes' }, value: 2 },
    ]);
    const warned = cap.lines().filter((l) => String(l.msg).includes('/volumes'));
    expect(warned).toHaveLength(1);
    expect(String(warned[0]?.msg)).toContain('volume store is broken');
  });

  it('switches families and the whole group off', async () => {
    const registry = new Registry();
    new EngineMetrics({
      docker: { get: () => Promise.reject(new Error('not called')) },
      inventory: inventory(),
      registry,
      logger: captureLogger().logger,
      countsIntervalMs: 0,
      diskUsageIntervalMs: 0,
      disabled: ['docker_engine_images', 'engine_disk_usage'],
    });
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).not.toContain('docker_engine_images');
    expect(names).not.toContain('docker_engine_disk_usage_bytes');
    expect(names).toContain('docker_engine_volumes');
    const off = new Registry();
    new EngineMetrics({
      docker: { get: () => Promise.reject(new Error('not called')) },
      inventory: inventory(),
      registry: off,
      logger: captureLogger().logger,
      countsIntervalMs: 0,
      diskUsageIntervalMs: 0,
      disabled: ['engine'],
    });
    expect((await off.getMetricsAsJSON()).map((m) => m.name)).toEqual([
      'harbormaster_engine_metrics_errors_total',
    ]);
  });
});
