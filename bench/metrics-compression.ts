/**
 * /metrics compression (issue 12): size and CPU of gzip / deflate for 1,000 synthetic containers.
 *
 * Renders the real collector's exposition over a synthetic cgroup v1 tree (bench/metrics-collection's
 * buildTree, same fixture container copied 1,000 times), then, best of N rounds:
 * - the render itself (baseline, measured in the same run): CPU ms;
 * - compressChunks (what the /metrics route streams) at zlib levels 1, 6 and 9, gzip and deflate:
 *   CPU ms, compressed size, ratio to the plain size, CPU relative to the render;
 * - one GET /metrics with `Accept-Encoding: gzip` through the real koa app on loopback: bytes on
 *   the wire and wall time, against the same GET without compression.
 *
 *   npm run build && node dist/bench/metrics-compression.js [--quick] [--containers=N]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { ContainerMetrics } from '../src/collectors/containers.js';
import type { ContainerInfo, ContainerSource } from '../src/docker/types.js';
import {
  METRICS_COMPRESSION_LEVEL,
  MetricsExporter,
  compressChunks,
} from '../src/exporters/prometheus.js';
import { createApp } from '../src/server/app.js';
import { makeContainerInfo } from '../test/support/container-info.js';
import { MiB, fmt, printTable } from './common.js';
import { buildTree } from './metrics-collection.js';

const hexId = (i: number): string => i.toString(16).padStart(8, '0').repeat(8);

function info(i: number): ContainerInfo {
  return makeContainerInfo({
    id: hexId(i),
    name: `svc-${i % 50}-replica-${i}`,
    image: `registry.example.com/team/app-${i % 20}:1.${i % 7}.0`,
    labels: {
      'com.docker.compose.project': `proj${i % 10}`,
      'com.docker.compose.service': `svc-${i % 50}`,
    },
    pid: 4242,
  });
}

const source = (items: ContainerInfo[]): ContainerSource => ({
  list: () => items,
  get: (id) => items.find((c) => c.id === id),
  subscribe: () => () => undefined,
  onDockerEvent: () => () => undefined,
  ready: () => true,
});

const cpuMs = (t: NodeJS.CpuUsage): number => (t.user + t.system) / 1000;

async function drain(r: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const c of r) n += (c as Buffer).length;
  return n;
}

async function bestOf<T>(
  rounds: number,
  fn: () => Promise<T>,
): Promise<{ cpu: number; wall: number; value: T }> {
  let best: { cpu: number; wall: number; value: T } | undefined;
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const value = await fn();
    const wall = performance.now() - w0;
    const cpu = cpuMs(process.cpuUsage(c0));
    if (!best || cpu < best.cpu) best = { cpu, wall, value };
  }
  return best as { cpu: number; wall: number; value: T };
}

function get(port: number, gzip: boolean): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(
        {
          host: '127.0.0.1',
          port,
          path: '/metrics',
          headers: gzip ? { 'Accept-Encoding': 'gzip' } : {},
        },
        (res) => {
          let bytes = 0;
          res.on('data', (b: Buffer) => (bytes += b.length));
          res.on('end', () => resolve({ bytes, ms: performance.now() - t0 }));
        },
      )
      .on('error', reject);
  });
}

export async function runCompressionBench(opts: {
  quick: boolean;
  containers?: number;
}): Promise<Record<string, unknown>> {
  const n = opts.containers ?? 1000;
  const rounds = opts.quick ? 3 : 7;
  const tree = await buildTree('v1-cgroupfs', n);
  const exporter = new MetricsExporter();
  const cm = new ContainerMetrics({
    inventory: source(Array.from({ length: n }, (_, i) => info(i))),
    logger: pino({ level: 'silent' }),
    registry: exporter.registry,
    cgroupRoot: tree.cgroupRoot,
    procRoot: tree.procRoot,
    minIntervalMs: 0,
    labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
  });
  exporter.addProvider(cm);
  const app = createApp({
    metrics: exporter,
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => [],
  });
  const handle = app.callback();
  const server = http.createServer((req, res) => void handle(req, res));
  try {
    cm.start();
    (await exporter.renderBody(false)).release(); // warm-up
    const render = await bestOf(rounds, async () => {
      const b = await exporter.renderBody(false);
      b.release();
      return b.length;
    });
    const body = await exporter.renderBody(false);
    const plain = body.length;
    const rows: Array<Record<string, string | number>> = [
      {
        encoding: 'identity (render only)',
        level: '-',
        cpu_ms: fmt(render.cpu),
        MiB: fmt(plain / MiB),
        ratio: '1',
        cpu_vs_render: '-',
      },
    ];
    const results: Array<Record<string, number | string>> = [];
    for (const encoding of ['gzip', 'deflate'] as const) {
      for (const level of encoding === 'gzip' ? [1, 6, 9] : [METRICS_COMPRESSION_LEVEL]) {
        const r = await bestOf(rounds, () => drain(compressChunks(body.chunks, encoding, level)));
        results.push({ encoding, level, cpu_ms: r.cpu, bytes: r.value, ratio: r.value / plain });
        rows.push({
          encoding: encoding + (level === METRICS_COMPRESSION_LEVEL ? ' (served)' : ''),
          level,
          cpu_ms: fmt(r.cpu),
          MiB: fmt(r.value / MiB, 3),
          ratio: fmt(r.value / plain, 3),
          cpu_vs_render: fmt(r.cpu / render.cpu),
        });
      }
    }
    body.release();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await get(port, true);
    let bestPlain = { bytes: 0, ms: Infinity };
    let bestGzip = { bytes: 0, ms: Infinity };
    for (let i = 0; i < rounds; i++) {
      const p = await get(port, false);
      if (p.ms < bestPlain.ms) bestPlain = p;
      const g = await get(port, true);
      if (g.ms < bestGzip.ms) bestGzip = g;
    }
    printTable(`/metrics compression, ${n} synthetic containers (best of ${rounds})`, rows);
    process.stdout.write(
      `GET /metrics over loopback: plain ${fmt(bestPlain.bytes / MiB)} MiB in ${fmt(bestPlain.ms)} ms, ` +
        `gzip ${fmt(bestGzip.bytes / MiB, 3)} MiB in ${fmt(bestGzip.ms)} ms\n`,
    );
    return {
      name: 'metrics-compression',
      containers: n,
      plain_bytes: plain,
      render_cpu_ms: render.cpu,
      rows: results,
      http: { plain: bestPlain, gzip: bestGzip },
    };
  } finally {
    cm.stop();
    await new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));
    rmSync(tree.root, { recursive: true, force: true });
  }
}

const isMain = process.argv[1]?.endsWith('metrics-compression.js') ?? false;
if (isMain) {
  const c = process.argv.find((a) => a.startsWith('--containers='))?.slice(13);
  runCompressionBench({
    quick: process.argv.includes('--quick'),
    containers: c ? Number(c) : undefined,
  }).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
