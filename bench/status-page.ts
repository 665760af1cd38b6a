/**
 * Benchmark of the status page (issue 15 goal: rendering the page or the JSON for 1,000
 * containers costs less than one /metrics render).
 *
 * One synthetic cgroup tree (v1, the fixture container's files, as bench/metrics-collection.ts
 * builds it) for N containers. Baseline in the same run: one /metrics body as a scrape sees it
 * (collection of every container + rendering, `min_interval_seconds` elapsed). Measured, best of
 * N rounds, CPU by process.cpuUsage:
 * - the status JSON (`GET /api/v1/status` body: build + JSON.stringify), with a full usage ring
 *   (60 samples per container), lifecycle and log shipping for every container;
 * - the status page (HTML with the document embedded);
 * - one container view JSON;
 * - one usage sampling round when no scrape is recent (it collects);
 * - GET / and GET /api/v1/status through the real koa app on loopback (wall time);
 * - the usage ring's memory.
 *
 *   npm run build && node dist/bench/status-page.js [--quick] [--containers=N] [--rounds=N]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import { LogTelemetry } from '../src/logs/telemetry.js';
import { telemetryLogSource } from '../src/server/status/log-source.js';
import { ContainerMetrics } from '../src/collectors/containers.js';
import type { ContainerInfo, ContainerSource } from '../src/docker/types.js';
import { MetricsExporter } from '../src/exporters/prometheus.js';
import { statusRoutes } from '../src/server/status/routes.js';
import { createApp } from '../src/server/app.js';
import {
  buildContainerDetail,
  buildStatus,
  type SecurityFinding,
} from '../src/server/status/model.js';
import { renderStatusPage } from '../src/server/status/page.js';
import { makeContainerInfo } from '../test/support/container-info.js';
import { staticStatusSources } from '../test/support/status-sources.js';
import { fmt, printTable } from './common.js';
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
    spec: { ...makeContainerInfo({ id: hexId(i) }).spec, memoryLimit: 256 << 20 },
  });
}

class Source implements ContainerSource {
  constructor(private readonly items: ContainerInfo[]) {}
  list(): ContainerInfo[] {
    return this.items;
  }
  get(id: string): ContainerInfo | undefined {
    return this.items.find((c) => c.id === id);
  }
  subscribe(): () => void {
    return () => undefined;
  }
  onDockerEvent(): () => void {
    return () => undefined;
  }
  ready(): boolean {
    return true;
  }
}

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

async function best(rounds: number, fn: () => unknown): Promise<{ cpu: number; wall: number }> {
  let cpu = Infinity;
  let wall = Infinity;
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall = Math.min(wall, performance.now() - t0);
    cpu = Math.min(cpu, cpuMs(process.cpuUsage(c0)));
  }
  return { cpu, wall };
}

function httpGet(url: string): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () =>
          resolve({ ms: performance.now() - t0, bytes, status: res.statusCode ?? 0 }),
        );
      })
      .on('error', reject);
  });
}

export async function runStatusBench(opts: {
  quick?: boolean;
  containers?: number;
  rounds?: number;
}) {
  const n = opts.containers ?? 1000;
  const rounds = opts.rounds ?? (opts.quick ? 5 : 15);
  const tree = await buildTree('v1-cgroupfs', n);
  const infos = Array.from({ length: n }, (_, i) => info(i));
  const exporter = new MetricsExporter();
  const cm = new ContainerMetrics({
    inventory: new Source(infos),
    logger: pino({ level: 'silent' }),
    registry: exporter.registry,
    cgroupRoot: tree.cgroupRoot,
    procRoot: tree.procRoot,
    minIntervalMs: 0,
    labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
  });
  exporter.addProvider(cm);
  // log shipping through the real path: the pipeline's telemetry with a source per container,
  // read by the status page's telemetryLogSource (a snapshot per request)
  const telemetry = new LogTelemetry(new Registry(), pino({ level: 'silent' }));
  for (const [i, c] of infos.entries()) {
    const st = telemetry.addSource(c.id, c.name, 'file', () => (i % 3 ? 0 : 4096));
    st.lines.stdout = 1000 * i;
    st.shipped = 990 * i;
  }
  const findings = new Map<string, SecurityFinding[]>();
  for (const [i, c] of infos.entries())
    findings.set(c.id, [
      {
        check: 'run_as_root',
        severity: 'medium',
        cis: '4.1',
        what: 'runs as root',
        allowed: false,
      },
      {
        check: 'pids_limit',
        severity: 'low',
        cis: '5.28',
        what: 'no PIDs limit',
        allowed: i % 2 === 0,
      },
    ]);
  const { sources, ring, lifecycle } = staticStatusSources(infos, {
    allowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
    findings,
  });
  sources.logs = telemetryLogSource(telemetry);
  for (const [i, c] of infos.entries())
    lifecycle.set(c.id, {
      restarts: i % 4,
      runs: 1 + (i % 4),
      lastExit: i % 4 ? { code: 137, at: Date.now() - 60_000, oomKilled: i % 8 === 1 } : null,
      oomKills: i % 8 === 1 ? 1 : 0,
    });
  const app = createApp({
    metrics: exporter,
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => infos,
    routes: statusRoutes(sources),
  });
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- koa's request handler
  const server = http.createServer(app.callback());
  try {
    cm.start();
    // a full ring: 60 real sampling rounds would take 15 minutes; the values are what matter
    const t0 = Date.now() - 60 * 15_000;
    const usage = (await cm.usage(0)).containers;
    for (let r = 0; r < ring.slots; r++)
      ring.record(
        t0 + r * 15_000,
        usage.map((u, i) => ({
          id: u.id,
          cpuSeconds: u.cpuSeconds + r * 0.01 * (i % 10),
          memoryBytes: u.memoryBytes + r * 1024,
        })),
      );
    (await exporter.renderBody(false)).release(); // warm-up
    JSON.stringify(buildStatus(sources));
    const scrape = await best(rounds, async () => (await exporter.renderBody(false)).release());
    const json = await best(rounds, () => JSON.stringify(buildStatus(sources)));
    const page = await best(rounds, () => renderStatusPage(buildStatus(sources), 3000));
    const one = await best(rounds, () =>
      JSON.stringify(buildContainerDetail(sources, hexId(n >> 1))),
    );
    const sample = await best(rounds, () => cm.usage(0));
    const jsonBytes = JSON.stringify(buildStatus(sources)).length;
    const pageBytes = renderStatusPage(buildStatus(sources), 3000).length;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let getPage = Infinity;
    let getJson = Infinity;
    let getMetrics = Infinity;
    for (let r = 0; r < rounds; r++) {
      getPage = Math.min(getPage, (await httpGet(`${base}/`)).ms);
      getJson = Math.min(getJson, (await httpGet(`${base}/api/v1/status`)).ms);
      getMetrics = Math.min(getMetrics, (await httpGet(`${base}/metrics`)).ms);
    }
    const rows = [
      {
        what: 'GET /metrics body (collect + render): baseline',
        cpu_ms: scrape.cpu,
        wall_ms: scrape.wall,
        bytes: '-',
        ratio: 1,
      },
      {
        what: 'status JSON (/api/v1/status body)',
        cpu_ms: json.cpu,
        wall_ms: json.wall,
        bytes: jsonBytes,
        ratio: json.cpu / scrape.cpu,
      },
      {
        what: 'status page (HTML, document embedded)',
        cpu_ms: page.cpu,
        wall_ms: page.wall,
        bytes: pageBytes,
        ratio: page.cpu / scrape.cpu,
      },
      {
        what: 'one container view (JSON)',
        cpu_ms: one.cpu,
        wall_ms: one.wall,
        bytes: '-',
        ratio: one.cpu / scrape.cpu,
      },
      {
        what: 'usage sampling round with no recent scrape',
        cpu_ms: sample.cpu,
        wall_ms: sample.wall,
        bytes: '-',
        ratio: sample.cpu / scrape.cpu,
      },
    ];
    printTable(
      `Status page, ${n} containers (best of ${rounds}; CPU = process.cpuUsage; ratio = CPU / the /metrics baseline)`,
      rows,
    );
    process.stdout.write(
      `HTTP GET wall ms (best of ${rounds}): / ${fmt(getPage)}, /api/v1/status ${fmt(getJson)}, /metrics ${fmt(getMetrics)}\n` +
        `usage ring: ${ring.slots} samples x ${ring.size} containers = ${fmt(ring.bytes() / 1024 / 1024)} MiB\n`,
    );
    return {
      containers: n,
      rounds,
      metrics_render_cpu_ms: scrape.cpu,
      status_json_cpu_ms: json.cpu,
      status_page_cpu_ms: page.cpu,
      container_view_cpu_ms: one.cpu,
      sampling_round_cpu_ms: sample.cpu,
      json_to_metrics_ratio: json.cpu / scrape.cpu,
      page_to_metrics_ratio: page.cpu / scrape.cpu,
      json_bytes: jsonBytes,
      page_bytes: pageBytes,
      http_get_page_ms: getPage,
      http_get_json_ms: getJson,
      http_get_metrics_ms: getMetrics,
      ring_bytes: ring.bytes(),
    };
  } finally {
    cm.stop();
    server.close();
    rmSync(tree.root, { recursive: true, force: true });
  }
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  runStatusBench({
    quick: process.argv.includes('--quick'),
    containers: arg('containers') ? Number(arg('containers')) : undefined,
    rounds: arg('rounds') ? Number(arg('rounds')) : undefined,
  }).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
