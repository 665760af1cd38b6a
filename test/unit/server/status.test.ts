// The status module without Docker: the usage ring's bounds and rates, the status document, and
// the routes on the real koa app (CSP, embedded data, 404s, hostile names).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsExporter } from '../../../src/exporters/prometheus.js';
import { statusRoutes } from '../../../src/server/status/routes.js';
import { createApp } from '../../../src/server/app.js';
import { buildContainerDetail, buildStatus } from '../../../src/server/status/model.js';
import { UsageSampler } from '../../../src/server/status/index.js';
import { UsageRing } from '../../../src/server/status/ring.js';
import { createLogger } from '../../../src/util/logger.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { staticStatusSources } from '../../support/status-sources.js';

const NOW = 1_700_000_100_000;
const id = (n: number) => n.toString(16).padStart(64, '0');

describe('usage ring', () => {
  it('turns cumulative CPU seconds into cores and keeps only the last window', () => {
    const ring = new UsageRing(4);
    for (let i = 0; i < 6; i++)
      ring.record(NOW + i * 15_000, [{ id: 'a', cpuSeconds: i * 7.5, memoryBytes: 1000 + i }]);
    const h = ring.history('a')!;
    expect(h.times).toEqual([2, 3, 4, 5].map((i) => NOW + i * 15_000));
    expect(h.cpuCores).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(h.memoryBytes).toEqual([1002, 1003, 1004, 1005]);
    expect(ring.latest('a')).toEqual({ cpuCores: 0.5, memoryBytes: 1005 });
    expect(ring.bytes()).toBe(4 * 8 + 4 * 8);
  });

  it('has no rate for the first sample or after a counter reset (restart), and gaps when absent', () => {
    const ring = new UsageRing(10);
    ring.record(NOW, [{ id: 'a', cpuSeconds: 100, memoryBytes: 1 }]);
    ring.record(NOW + 10_000, [{ id: 'a', cpuSeconds: 1, memoryBytes: 2 }]);
    ring.record(NOW + 20_000, []);
    ring.record(NOW + 30_000, [{ id: 'a', cpuSeconds: 6, memoryBytes: 3 }]);
    expect(ring.history('a')?.cpuCores).toEqual([null, null, null, 0.25]);
    expect(ring.history('a')?.memoryBytes).toEqual([1, 2, null, 3]);
  });

  it('forgets a container absent for a whole window, so memory stays bounded', () => {
    const ring = new UsageRing(3);
    ring.record(NOW, [{ id: 'gone', cpuSeconds: 1, memoryBytes: 1 }]);
    for (let i = 1; i <= 4; i++)
      ring.record(NOW + i * 1000, [{ id: 'stays', cpuSeconds: i, memoryBytes: 1 }]);
    expect(ring.history('gone')).toBeUndefined();
    expect(ring.size).toBe(1);
  });

  it('rejects a size it cannot hold, naming it', () => {
    expect(() => new UsageRing(1)).toThrow(/slots must be an integer from 2 to 10000, got 1/);
  });
});

describe('usage sampler', () => {
  it('records each collection once, at the time it was read, and survives a failing round', async () => {
    const ring = new UsageRing(10);
    const rounds: Array<{ at: number; cpu: number } | Error> = [
      { at: NOW, cpu: 1 },
      { at: NOW, cpu: 1 }, // the same (scrape's) collection again: not recorded twice
      new Error('cgroup root is gone'),
      { at: NOW + 20_000, cpu: 6 },
    ];
    const sampler = new UsageSampler({
      ring,
      intervalMs: 15_000,
      logger: createLogger('silent'),
      sample: (maxAgeMs) => {
        expect(maxAgeMs).toBe(15_000);
        const r = rounds.shift()!;
        if (r instanceof Error) return Promise.reject(r);
        return Promise.resolve({
          at: r.at,
          containers: [{ id: 'a', cpuSeconds: r.cpu, memoryBytes: 1 }],
        });
      },
    });
    await sampler.tick();
    await sampler.tick();
    await sampler.tick();
    expect(sampler.health()).toEqual({
      ok: false,
      detail: 'usage sampling failed: cgroup root is gone',
    });
    await sampler.tick();
    expect(sampler.health().ok).toBe(true);
    expect(ring.history('a')).toEqual({
      times: [NOW, NOW + 20_000],
      cpuCores: [null, 0.25],
      memoryBytes: [1, 1],
    });
  });
});

describe('status document', () => {
  const web = makeContainerInfo({
    id: id(1),
    name: 'web',
    labels: { 'com.docker.compose.project': 'shop', secret: 'hunter2' },
    startedAt: NOW - 90_000,
    spec: { ...makeContainerInfo({ id: id(9) }).spec, memoryLimit: 64 << 20 },
  });
  const done = makeContainerInfo({
    id: id(2),
    name: 'batch',
    state: 'exited',
    finishedAt: NOW - 5000,
    exitCode: 137,
    oomKilled: true,
  });

  it('lists containers by name with lifecycle, usage, limits and log shipping', () => {
    const { sources, ring, lifecycle } = staticStatusSources([web, done], {
      now: () => NOW,
      logs: {
        containers: new Map([
          [web.id, { linesRead: 42, linesShipped: 40, bytesBehind: 10, lastError: null }],
        ]),
        queue: { records: 3, bytes: 300 },
        exported: 40,
        lastSuccessAt: NOW - 1000,
        lastError: null,
        exportFailures: { retryable: 2 },
        drops: { rotated_away: 1 },
      },
    });
    lifecycle.set(web.id, { restarts: 2, runs: 3, lastExit: null, oomKills: 1 });
    ring.record(NOW - 15_000, [{ id: web.id, cpuSeconds: 10, memoryBytes: 5 << 20 }]);
    ring.record(NOW, [{ id: web.id, cpuSeconds: 13, memoryBytes: 6 << 20 }]);
    const doc = buildStatus(sources);
    expect(doc.containers.map((c) => c.name)).toEqual(['batch', 'web']);
    const w = doc.containers[1]!;
    expect(w).toMatchObject({
      state: 'running',
      uptimeSeconds: 90,
      restarts: 2,
      oomKills: 1,
      cpuCores: 0.2,
      memoryBytes: 6 << 20,
      memoryLimitBytes: 64 << 20,
      logs: { linesRead: 42, linesShipped: 40, bytesBehind: 10 },
    });
    // an exited container without lifecycle data falls back to what inspect said
    expect(doc.containers[0]).toMatchObject({
      uptimeSeconds: null,
      cpuCores: null,
      lastExit: { code: 137, oomKilled: true },
    });
    expect(doc.logs).toEqual({
      enabled: true,
      queue: { records: 3, bytes: 300 },
      exported: 40,
      lastSuccessAt: NOW - 1000,
      lastError: null,
      exportFailures: { retryable: 2 },
      drops: { rotated_away: 1 },
    });
    expect(doc.agent.uptimeSeconds).toBe(100);
    expect(doc.otlp[0]?.lastError).toContain('503');
  });

  it('shows only allowlisted labels in the container view', () => {
    const { sources } = staticStatusSources([web], { now: () => NOW });
    const d = buildContainerDetail(sources, web.id)!;
    expect(d.labels).toEqual({ 'com.docker.compose.project': 'shop' });
    expect(JSON.stringify(d)).not.toContain('hunter2');
    expect(d.history.windowSeconds).toBe(15 * 60);
    expect(buildContainerDetail(sources, id(77))).toBeUndefined();
  });

  it('counts security findings an allow list does not exempt, and lists them all in the view', () => {
    const cap = {
      check: 'capabilities',
      severity: 'high',
      cis: '5.3',
      what: "has capabilities added beyond Docker's default set",
      allowed: false,
    };
    const pids = { check: 'pids_limit', severity: 'low', cis: '5.28', what: 'x', allowed: true };
    const { sources } = staticStatusSources([web, done], {
      now: () => NOW,
      findings: new Map([[web.id, [cap, pids]]]),
    });
    const doc = buildStatus(sources);
    expect(doc.containers.map((c) => [c.name, c.findings])).toEqual([
      ['batch', null],
      ['web', 1],
    ]);
    expect(buildContainerDetail(sources, web.id)?.securityFindings).toEqual([cap, pids]);
    expect(buildContainerDetail(sources, done.id)?.securityFindings).toBeNull();
    // without the security feature nothing is judged
    const off = staticStatusSources([web], { now: () => NOW }).sources;
    expect(buildStatus(off).containers[0]?.findings).toBeNull();
  });
});

describe('status routes', () => {
  let server: http.Server | undefined;
  afterEach(() => server?.close());

  async function serve(names: string[]): Promise<string> {
    const infos = names.map((name, i) => makeContainerInfo({ id: id(i + 1), name }));
    const { sources } = staticStatusSources(infos);
    const app = createApp({
      metrics: new MetricsExporter(),
      ready: () => ({ ok: true }),
      components: () => ({}),
      containers: () => infos,
      routes: statusRoutes(sources),
    });
    const handler = app.callback();
    server = http.createServer((req, res) => void handler(req, res));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('serves the page with a strict CSP and the first status embedded, without assets', async () => {
    const base = await serve(['web', 'db']);
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'sha256-[^']+'(;|$)/);
    expect(csp).not.toContain('unsafe');
    const html = await res.text();
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="(?!data:)/); // nothing external
    const data = /<script type="application\/json" id="hm-data">(.*?)<\/script>/s.exec(html)?.[1];
    expect(
      (JSON.parse(data!) as { containers: Array<{ name: string }> }).containers.map((c) => c.name),
    ).toEqual(['db', 'web']);
  });

  it('keeps a hostile container name inert in the page', async () => {
    const evil = '</script><img src=x onerror=alert(1)>';
    const html = await (await fetch(`${await serve([evil])}/`)).text();
    expect(html).not.toContain(evil);
    expect(html.match(/<\/script>/g)).toHaveLength(2); // the data block's and the script's own
  });

  it('answers the JSON API and 404 for an unknown container, naming it', async () => {
    const base = await serve(['web']);
    const doc = (await (await fetch(`${base}/api/v1/status`)).json()) as { schemaVersion: number };
    expect(doc.schemaVersion).toBe(1);
    const one = await fetch(`${base}/api/v1/status/container?id=${id(1)}`);
    expect(((await one.json()) as { name: string }).name).toBe('web');
    const noId = await fetch(`${base}/api/v1/status/container`);
    expect(noId.status).toBe(400);
    expect(await noId.text()).toContain('/api/v1/status/container?id=ID');
    const missing = await fetch(`${base}/api/v1/status/container?id=nope`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('no container \\"nope\\"');
    // the other routes are still there
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });
});
