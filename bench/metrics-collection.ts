/**
 * Benchmark of the cgroup collector (issue 3 / issue 7 goals: ≤ 0.1 ms CPU per container per
 * collection; /metrics for 1,000 containers renders in ≤ 250 ms).
 *
 * Builds synthetic cgroup trees (v1 and v2, copies of the fixture container's files) for 1,000
 * and 5,000 containers in a temp dir, then measures one full collection (CPU and wall), the render
 * of the whole /metrics text through the MetricsExporter, its size, and RSS. As a baseline in the
 * same run it renders the same number of series through prom-client Gauge objects.
 *
 *   npm run build && node dist/bench/metrics-collection.js [--quick]
 */
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { ContainerMetrics } from '../src/collectors/containers.js';
import { containerCgroupPath } from '../src/docker/cgroup-path.js';
import type { ContainerInfo, ContainerSource } from '../src/docker/types.js';
import { MetricsExporter } from '../src/exporters/prometheus.js';

const FIXTURE_ID = 'c0ffee00'.repeat(8);

function fixturesDir(): string {
  // works from bench/ (tsx) and dist/bench/ (built)
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const cand = path.join(dir, 'test', 'fixtures', 'cgroup');
    try {
      if (statSync(cand).isDirectory()) return cand;
    } catch {
      // go up
    }
    dir = path.dirname(dir);
  }
  throw new Error('cannot find test/fixtures/cgroup');
}

function hexId(i: number): string {
  return i.toString(16).padStart(8, '0').repeat(8);
}

function info(i: number): ContainerInfo {
  const id = hexId(i);
  const p = containerCgroupPath(id, 'cgroupfs');
  return {
    id,
    name: `svc-${i % 50}-replica-${i}`,
    image: `registry.example.com/team/app-${i % 20}:1.${i % 7}.0`,
    imageId: 'sha256:' + 'ab'.repeat(32),
    labels: {
      'com.docker.compose.project': `proj${i % 10}`,
      'com.docker.compose.service': `svc-${i % 50}`,
    },
    state: 'running',
    pid: 4242,
    createdAt: 1_700_000_000_000,
    startedAt: 1_700_000_001_000,
    finishedAt: 0,
    restartCount: 0,
    exitCode: 0,
    oomKilled: false,
    health: 'none',
    healthFailingStreak: 0,
    networkMode: 'bridge',
    logDriver: 'json-file',
    logPath: '',
    cgroup: { v1: p, v2: p },
    spec: {
      cpuShares: 0,
      cpuPeriod: 0,
      cpuQuota: 0,
      nanoCpus: 0,
      memoryLimit: 0,
      memorySwap: 0,
      memoryReservation: 0,
      pidsLimit: 0,
    },
  };
}

/** The files the collector reads (plus cgroup.procs); the rest of a real cgroup dir is not touched. */
const READ_FILES: Record<string, string[]> = {
  cpu: ['cpu.stat', 'cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cgroup.procs'],
  cpuacct: ['cpuacct.usage', 'cpuacct.stat', 'cgroup.procs'],
  memory: [
    'memory.usage_in_bytes',
    'memory.max_usage_in_bytes',
    'memory.failcnt',
    'memory.stat',
    'memory.oom_control',
    'memory.limit_in_bytes',
    'memory.memsw.limit_in_bytes',
    'memory.soft_limit_in_bytes',
    'cgroup.procs',
  ],
  blkio: ['blkio.throttle.io_service_bytes_recursive', 'blkio.throttle.io_serviced_recursive'],
  pids: ['pids.current', 'pids.max', 'cgroup.procs'],
  unified: ['cpu.pressure', 'memory.pressure', 'io.pressure'],
  '': [
    'cpu.stat',
    'cpu.weight',
    'cpu.max',
    'memory.current',
    'memory.stat',
    'memory.events',
    'memory.peak',
    'memory.swap.current',
    'memory.max',
    'memory.swap.max',
    'memory.low',
    'io.stat',
    'cgroup.procs',
    'pids.current',
    'pids.max',
    'cpu.pressure',
    'memory.pressure',
    'io.pressure',
  ],
};

/** Writes the fixture container's cgroup files n times under a temp root (tmpfs when available). */
function buildTree(
  shape: 'v1-cgroupfs' | 'v2-cgroupfs',
  n: number,
): { root: string; cgroupRoot: string; procRoot: string } {
  const fx = path.join(fixturesDir(), shape);
  const base = statSync('/dev/shm', { throwIfNoEntry: false })?.isDirectory()
    ? '/dev/shm'
    : os.tmpdir();
  const root = mkdtempSync(path.join(base, `hm-bench-${shape}-`));
  const cgroupRoot = path.join(root, 'sys/fs/cgroup');
  cpSync(path.join(fx, 'proc'), path.join(root, 'proc'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  const srcCg = path.join(fx, 'sys/fs/cgroup');
  const hierarchies =
    shape === 'v2-cgroupfs' ? [''] : ['cpu', 'cpuacct', 'memory', 'blkio', 'pids', 'unified'];
  mkdirSync(cgroupRoot, { recursive: true });
  if (shape === 'v2-cgroupfs') {
    writeFileSync(path.join(cgroupRoot, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  } else {
    mkdirSync(path.join(cgroupRoot, 'unified'), { recursive: true });
    writeFileSync(path.join(cgroupRoot, 'unified', 'cgroup.controllers'), '');
  }
  for (const h of hierarchies) {
    const src = path.join(srcCg, h, 'docker', FIXTURE_ID);
    const files = (READ_FILES[h] ?? []).map((f) => [f, readFileSync(path.join(src, f))] as const);
    for (let i = 0; i < n; i++) {
      const dst = path.join(cgroupRoot, h, 'docker', hexId(i));
      mkdirSync(dst, { recursive: true });
      for (const [f, data] of files) writeFileSync(path.join(dst, f), data);
    }
  }
  return { root, cgroupRoot, procRoot: path.join(root, 'proc') };
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

async function measure(shape: 'v1-cgroupfs' | 'v2-cgroupfs', n: number, rounds: number) {
  const tree = buildTree(shape, n);
  try {
    const exporter = new MetricsExporter();
    const cm = new ContainerMetrics({
      inventory: new Source(Array.from({ length: n }, (_, i) => info(i))),
      logger: pino({ level: 'silent' }),
      registry: exporter.registry,
      cgroupRoot: tree.cgroupRoot,
      procRoot: tree.procRoot,
      minIntervalMs: 0,
      labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
    });
    exporter.addProvider({ render: () => cm.render() });
    cm.start();
    await exporter.renderText(); // warm-up: probes, specs, JIT
    let bestCpu = Infinity;
    let bestWall = Infinity;
    let bytes = 0;
    let series = 0;
    for (let r = 0; r < rounds; r++) {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      const text = await exporter.renderText();
      const wall = performance.now() - w0;
      const cpu = cpuMs(process.cpuUsage(c0));
      bestCpu = Math.min(bestCpu, cpu);
      bestWall = Math.min(bestWall, wall);
      bytes = Buffer.byteLength(text);
      series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    }
    return {
      shape,
      containers: n,
      collection_cpu_ms: +bestCpu.toFixed(1),
      collection_wall_ms: +bestWall.toFixed(1),
      cpu_ms_per_container: +(bestCpu / n).toFixed(4),
      metrics_bytes: bytes,
      series,
      rss_mb: +(process.memoryUsage().rss / 1024 / 1024).toFixed(1),
    };
  } finally {
    rmSync(tree.root, { recursive: true, force: true });
  }
}

/** Baseline: the same number of series as prom-client Gauges, rendered by registry.metrics(). */
async function promClientBaseline(n: number, seriesPerContainer: number) {
  const registry = new Registry();
  const gauges = Array.from(
    { length: seriesPerContainer },
    (_, f) =>
      new Gauge({
        name: `bench_family_${f}`,
        help: 'x',
        labelNames: [
          'id',
          'image',
          'name',
          'container_label_com_docker_compose_project',
          'container_label_com_docker_compose_service',
        ],
        registers: [registry],
      }),
  );
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < n; i++) {
    const c = info(i);
    const labels = {
      id: c.cgroup.v1,
      image: c.image,
      name: c.name,
      container_label_com_docker_compose_project: c.labels['com.docker.compose.project'] ?? '',
      container_label_com_docker_compose_service: c.labels['com.docker.compose.service'] ?? '',
    };
    for (const g of gauges) g.set(labels, i);
  }
  const text = await registry.metrics();
  return {
    containers: n,
    set_and_render_cpu_ms: +cpuMs(process.cpuUsage(c0)).toFixed(1),
    set_and_render_wall_ms: +(performance.now() - w0).toFixed(1),
    bytes: Buffer.byteLength(text),
  };
}

export async function runMetricsBench(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const sizes = opts.quick ? [1000] : [1000, 5000];
  const rounds = opts.quick ? 3 : 5;
  const rows = [];
  for (const shape of ['v1-cgroupfs', 'v2-cgroupfs'] as const) {
    for (const n of sizes) rows.push(await measure(shape, n, rounds));
  }
  const perContainerSeries = Math.round((rows[0]?.series ?? 0) / (rows[0]?.containers ?? 1));
  const baseline = await promClientBaseline(1000, perContainerSeries);
  console.table(rows);
  console.log('prom-client baseline (same series count, 1,000 containers):');
  console.table([baseline]);
  return { name: 'metrics-collection', rows, prom_client_baseline: baseline };
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  runMetricsBench({ quick: process.argv.includes('--quick') }).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
