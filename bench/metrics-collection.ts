/**
 * Benchmark of the cgroup collector (issue 7 goals: ≤ 0.1 ms CPU per container per full
 * collection, i.e. 1,000 containers ≤ 100 ms; /metrics for 1,000 containers renders in ≤ 250 ms).
 *
 * Builds synthetic cgroup trees (v1 hybrid and v2 layouts, copies of the fixture container's
 * files, on /dev/shm when available, written in parallel batches) for 1,000 and 5,000 containers,
 * then measures, best of N rounds:
 * - one full collection (`ContainerMetrics.collect`: read every container + render its series):
 *   CPU time (process.cpuUsage, the figure the goal is about) and wall time;
 * - the whole /metrics body through MetricsExporter.render (collection included, as a scrape
 *   with `min_interval_seconds` elapsed sees it), in the Prometheus text format and OpenMetrics:
 *   CPU and wall time, size, series;
 * - one GET /metrics through the real koa app on loopback (wall time until the last byte);
 * - RSS after the rounds and the number of cgroup files the collector keeps open.
 * Baseline in the same run: the same number of series set and rendered through prom-client Gauges.
 *
 *   npm run build && node dist/bench/metrics-collection.js [--quick] [--sizes=1000,5000]
 *     [--shapes=v1,v2] [--rounds=N]
 * `--quick`: 1,000 containers, v1 + v2, 3 rounds (well under a minute). Profile with
 *   node --cpu-prof dist/bench/metrics-collection.js --quick --shapes=v1
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { ContainerMetrics } from '../src/collectors/containers.js';
import { WritableLayers } from '../src/collectors/fs-usage.js';
import type { ContainerInfo, ContainerSource } from '../src/docker/types.js';
import { MetricsExporter } from '../src/exporters/prometheus.js';
import { createApp } from '../src/server/app.js';
import { softOpenFilesLimit } from '../src/util/open-files.js';
import { makeContainerInfo } from '../test/support/container-info.js';

const FIXTURE_ID = 'c0ffee00'.repeat(8);

/** Goals of issue 7, per container (they scale linearly with the container count). */
const GOAL_COLLECTION_CPU_MS_PER_CONTAINER = 0.1;
const GOAL_RENDER_MS_PER_CONTAINER = 0.25;

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

/** The files the collector reads (plus cgroup.procs); the rest of a real cgroup dir is not touched. */
const READ_FILES: Record<string, string[]> = {
  cpu: ['cpu.stat', 'cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cgroup.procs'],
  cpuacct: ['cpuacct.usage', 'cpuacct.stat', 'cgroup.procs'],
  memory: [
    'memory.usage_in_bytes',
    'memory.max_usage_in_bytes',
    'memory.kmem.usage_in_bytes',
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

type Shape = 'v1-cgroupfs' | 'v2-cgroupfs';

/** Runs fn over items with at most `width` promises in flight. */
async function inBatches<T>(
  items: readonly T[],
  width: number,
  fn: (x: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** Writes the fixture container's cgroup files n times under a temp root (tmpfs when available). */
export async function buildTree(
  shape: Shape,
  n: number,
): Promise<{ root: string; cgroupRoot: string; procRoot: string; buildMs: number }> {
  const t0 = performance.now();
  const fx = path.join(fixturesDir(), shape);
  const base = statSync('/dev/shm', { throwIfNoEntry: false })?.isDirectory()
    ? '/dev/shm'
    : os.tmpdir();
  const root = mkdtempSync(path.join(base, `hm-bench-${shape}-`));
  const cgroupRoot = path.join(root, 'sys/fs/cgroup');
  await cp(path.join(fx, 'proc'), path.join(root, 'proc'), {
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
  const jobs: Array<{ dir: string; files: ReadonlyArray<readonly [string, Buffer]> }> = [];
  for (const h of hierarchies) {
    const src = path.join(srcCg, h, 'docker', FIXTURE_ID);
    const files = (READ_FILES[h] ?? []).map((f) => [f, readFileSync(path.join(src, f))] as const);
    mkdirSync(path.join(cgroupRoot, h, 'docker'), { recursive: true });
    for (let i = 0; i < n; i++)
      jobs.push({ dir: path.join(cgroupRoot, h, 'docker', hexId(i)), files });
  }
  await inBatches(jobs, 64, async ({ dir, files }) => {
    await mkdir(dir);
    await Promise.all(files.map(([f, data]) => writeFile(path.join(dir, f), data)));
  });
  return { root, cgroupRoot, procRoot: path.join(root, 'proc'), buildMs: performance.now() - t0 };
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

/** Best CPU and wall time (ms) of `rounds` runs of fn; returns the last result too. */
async function best<T>(
  rounds: number,
  fn: () => Promise<T>,
): Promise<{ cpu: number; wall: number; last: T }> {
  let cpu = Infinity;
  let wall = Infinity;
  let last: T | undefined;
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    last = await fn();
    const w = performance.now() - w0;
    const c = cpuMs(process.cpuUsage(c0));
    cpu = Math.min(cpu, c);
    wall = Math.min(wall, w);
  }
  return { cpu, wall, last: last as T };
}

/** GET url; resolves with the wall time until the last byte and the body size. */
function httpGet(url: string, accept?: string): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, { headers: accept ? { accept } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ ms: performance.now() - t0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function countSeries(text: string): number {
  let n = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end > start && text.charCodeAt(start) !== 0x23 /* # */) n++;
    start = end + 1;
  }
  return n;
}

/**
 * The families (and the id="/" root container) added by issue 14. Switched off, the collector
 * does what it did before them: the baseline of the "within 10 %" goal, measured in the same run.
 */
export const ISSUE14_ADDITIONS = [
  'root',
  'fs_usage',
  'container_memory_failures_total',
  'container_memory_kernel_usage',
  'container_blkio_device_usage_total',
];
/** Goal of issue 14: collection CPU with every default family within 10 % of the baseline. */
const GOAL_ADDITIONS_RATIO = 1.1;

/** Writable-layer sizes as the collector sees them between refreshes (a map lookup). */
const FS_USAGE = {
  usage: (id: string) => ({ bytes: 4096 * (id.charCodeAt(0) % 7), inodes: 3, at: 0 }),
  filesystem: () => ({
    device: '/dev/sda1',
    sizeBytes: 100 * 2 ** 30,
    inodesTotal: 6_553_600,
    inodesFree: 6_000_000,
  }),
};

/**
 * Collection CPU (best of rounds) with the issue 14 additions on and off. One collector at a time
 * (each keeps its cgroup files open, and two would not fit the open-file budget together), in
 * alternating cycles so load from elsewhere on the machine hits both alike.
 */
async function measureAdditions(
  tree: { cgroupRoot: string; procRoot: string },
  n: number,
  rounds: number,
) {
  const files = { all: 0, before: 0, proc: 0, budget: 0, keptAll: 0 };
  const run = async (disabled: string[]): Promise<number> => {
    const c = new ContainerMetrics({
      inventory: new Source(Array.from({ length: n }, (_, i) => info(i))),
      logger: pino({ level: 'silent' }),
      cgroupRoot: tree.cgroupRoot,
      procRoot: tree.procRoot,
      minIntervalMs: 0,
      labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
      fsUsage: FS_USAGE,
      disabled,
    });
    c.start();
    try {
      await c.collect();
      const cpu = (await best(rounds, () => c.collect())).cpu;
      const b = c.fileBudget();
      files.budget = b.limit;
      files.proc = b.procFiles;
      if (disabled.length === 0) {
        files.all = b.cgroupFiles;
        files.keptAll = b.kept;
      }
      if (disabled.length === ISSUE14_ADDITIONS.length) files.before = b.cgroupFiles;
      return cpu;
    } finally {
      c.stop();
    }
  };
  let cpuAll = Infinity;
  let cpuBefore = Infinity;
  // each addition alone on top of the baseline: what it costs (best of the cycles, minus baseline)
  const alone = new Map<string, number>(ISSUE14_ADDITIONS.map((a) => [a, Infinity]));
  for (let cycle = 0; cycle < 3; cycle++) {
    cpuBefore = Math.min(cpuBefore, await run(ISSUE14_ADDITIONS));
    cpuAll = Math.min(cpuAll, await run([]));
    for (const a of ISSUE14_ADDITIONS)
      alone.set(a, Math.min(alone.get(a)!, await run(ISSUE14_ADDITIONS.filter((x) => x !== a))));
  }
  const perAddition: Record<string, number> = {};
  for (const [a, cpu] of alone) perAddition[a] = cpu - cpuBefore;
  return { cpuAll, cpuBefore, ratio: cpuAll / cpuBefore, perAddition, files };
}

async function measure(shape: Shape, n: number, rounds: number) {
  const tree = await buildTree(shape, n);
  const exporter = new MetricsExporter();
  const cm = new ContainerMetrics({
    inventory: new Source(Array.from({ length: n }, (_, i) => info(i))),
    logger: pino({ level: 'silent' }),
    registry: exporter.registry,
    cgroupRoot: tree.cgroupRoot,
    procRoot: tree.procRoot,
    minIntervalMs: 0,
    labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
    fsUsage: FS_USAGE,
  });
  exporter.addProvider(cm);
  const app = createApp({
    metrics: exporter,
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => [],
  });
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- koa's request handler
  const server = http.createServer(app.callback());
  try {
    cm.start();
    await cm.collect(); // warm-up: probes, specs, label blocks, open files, JIT
    (await exporter.renderBody(false)).release();
    const collection = await best(rounds, () => cm.collect());
    // a scrape: render, then write the body (here: nowhere) and release it
    const scrape = async (om: boolean) => {
      const body = await exporter.renderBody(om);
      const r = {
        length: body.length,
        text: om ? '' : Buffer.concat(body.chunks).toString('utf8'),
      };
      body.release();
      return r;
    };
    const text = await best(rounds, () => exporter.renderBody(false).then((b) => (b.release(), b)));
    const om = await best(rounds, () => exporter.renderBody(true).then((b) => (b.release(), b)));
    const last = await scrape(false);
    const bytes = last.length;
    const series = countSeries(last.text);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    let getMs = Infinity;
    for (let r = 0; r < rounds; r++) getMs = Math.min(getMs, (await httpGet(url)).ms);
    const rss = process.memoryUsage().rss / 1024 / 1024;
    const openFiles = cm.openFiles();
    cm.stop(); // its open files would crowd out the collectors below
    const additions = await measureAdditions(tree, n, rounds);
    return {
      shape,
      containers: n,
      tree_build_ms: Math.round(tree.buildMs),
      collection_cpu_ms: collection.cpu,
      collection_wall_ms: collection.wall,
      cpu_ms_per_container: collection.cpu / n,
      render_cpu_ms: text.cpu,
      render_wall_ms: text.wall,
      render_openmetrics_cpu_ms: om.cpu,
      http_get_wall_ms: getMs,
      metrics_bytes: bytes,
      series,
      rss_mb: rss,
      open_cgroup_files: openFiles,
      before_issue14_cpu_ms: additions.cpuBefore,
      all_families_cpu_ms: additions.cpuAll,
      issue14_cpu_ratio: additions.ratio,
      issue14_cpu_ms_by_addition: additions.perAddition,
      cgroup_files_all_families: additions.files.all,
      cgroup_files_before_issue14: additions.files.before,
      proc_files: additions.files.proc,
      files_kept_open_all_families: additions.files.keptAll,
      open_file_budget: additions.files.budget,
      open_files_soft_limit: softOpenFilesLimit() ?? null,
    };
  } finally {
    cm.stop();
    server.close();
    rmSync(tree.root, { recursive: true, force: true });
  }
}

/**
 * Cost of one writable-layer refresh (container_fs_usage_bytes): a synthetic overlay2 data root
 * with `n` container layers of `files` small files each (in a few directories, like a container
 * that wrote logs and caches), walked by WritableLayers.refresh(). Reported per refresh and per
 * container; the walk yields every 5 ms, so the wall time includes the yields.
 */
async function measureFsRefresh(n: number, files: number, rounds: number) {
  const base = statSync('/dev/shm', { throwIfNoEntry: false })?.isDirectory()
    ? '/dev/shm'
    : os.tmpdir();
  const root = mkdtempSync(path.join(base, 'hm-bench-fs-'));
  try {
    const t0 = performance.now();
    const ids = Array.from({ length: n }, (_, i) => hexId(i));
    const data = Buffer.alloc(4096, 7);
    await inBatches(ids, 64, async (id) => {
      const mounts = path.join(root, 'image/overlay2/layerdb/mounts', id);
      await mkdir(mounts, { recursive: true });
      await writeFile(path.join(mounts, 'mount-id'), `m${id.slice(0, 16)}`);
      const diff = path.join(root, 'overlay2', `m${id.slice(0, 16)}`, 'diff');
      const dirs = ['var/log/app', 'var/cache/app', 'tmp', 'root'];
      await Promise.all(dirs.map((d) => mkdir(path.join(diff, d), { recursive: true })));
      await Promise.all(
        Array.from({ length: files }, (_, f) =>
          writeFile(path.join(diff, dirs[f % dirs.length] as string, `f${f}`), data),
        ),
      );
    });
    const buildMs = performance.now() - t0;
    const layers = new WritableLayers({
      dockerRoot: root,
      procRoot: '/proc',
      logger: pino({ level: 'silent' }),
      intervalMs: 0,
      budgetMs: 600_000,
      containers: () => ids,
    });
    await layers.refresh(); // warm-up (dentry cache, layer directory lookups)
    const r = await best(rounds, () => layers.refresh());
    return {
      containers: n,
      entries_per_layer: files + 7,
      tree_build_ms: Math.round(buildMs),
      refresh_cpu_ms: r.cpu,
      refresh_wall_ms: r.wall,
      cpu_ms_per_container: r.cpu / n,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
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
    set_and_render_cpu_ms: cpuMs(process.cpuUsage(c0)),
    set_and_render_wall_ms: performance.now() - w0,
    bytes: Buffer.byteLength(text),
  };
}

const f1 = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 3));

/** One printed line per figure: value, goal, ratio (value / goal; ≤ 1 meets the goal). */
function printTable(rows: Array<Awaited<ReturnType<typeof measure>>>): void {
  const lines: string[][] = [['case', 'figure', 'value', 'goal', 'ratio', 'met']];
  for (const r of rows) {
    const c = `${r.shape === 'v1-cgroupfs' ? 'v1' : 'v2'} × ${r.containers}`;
    const goalCpu = GOAL_COLLECTION_CPU_MS_PER_CONTAINER * r.containers;
    const goalRender = GOAL_RENDER_MS_PER_CONTAINER * r.containers;
    const withGoal = (name: string, v: number, goal: number, unit: string): string[] => [
      c,
      name,
      `${f1(v)} ${unit}`,
      `≤ ${f1(goal)} ${unit}`,
      (v / goal).toFixed(2),
      v <= goal ? 'yes' : 'NO',
    ];
    const info = (name: string, v: string): string[] => [c, name, v, '', '', ''];
    lines.push(
      withGoal('collection CPU', r.collection_cpu_ms, goalCpu, 'ms'),
      withGoal(
        'collection CPU / container',
        r.cpu_ms_per_container,
        GOAL_COLLECTION_CPU_MS_PER_CONTAINER,
        'ms',
      ),
      info('collection wall', `${f1(r.collection_wall_ms)} ms`),
      withGoal('/metrics render wall (text)', r.render_wall_ms, goalRender, 'ms'),
      info('/metrics render CPU (text)', `${f1(r.render_cpu_ms)} ms`),
      info('/metrics render CPU (OpenMetrics)', `${f1(r.render_openmetrics_cpu_ms)} ms`),
      info('GET /metrics wall (loopback)', `${f1(r.http_get_wall_ms)} ms`),
      info(
        '/metrics size',
        `${(r.metrics_bytes / 1024 / 1024).toFixed(1)} MiB, ${r.series} series`,
      ),
      [
        c,
        'collection CPU, all families / without issue 14 additions',
        `${f1(r.all_families_cpu_ms)} / ${f1(r.before_issue14_cpu_ms)} ms`,
        `≤ ${GOAL_ADDITIONS_RATIO.toFixed(2)}×`,
        r.issue14_cpu_ratio.toFixed(2),
        r.issue14_cpu_ratio <= GOAL_ADDITIONS_RATIO ? 'yes' : 'NO',
      ],
      info(
        'issue 14 additions, CPU of each alone',
        Object.entries(r.issue14_cpu_ms_by_addition)
          .map(([a, ms]) => `${a.replace(/^container_/, '')} ${ms >= 0 ? '+' : ''}${f1(ms)}`)
          .join(', ') + ' ms',
      ),
      info(
        'files per collection, cgroup all / before + /proc; kept open / budget (soft limit)',
        `${r.cgroup_files_all_families} / ${r.cgroup_files_before_issue14} + ${r.proc_files}; ` +
          `${r.files_kept_open_all_families} / ${r.open_file_budget} (${r.open_files_soft_limit ?? '?'})`,
      ),
      info('RSS', `${r.rss_mb.toFixed(0)} MiB`),
      info('open cgroup files', String(r.open_cgroup_files)),
      info('synthetic tree build', `${r.tree_build_ms} ms`),
    );
  }
  const widths = (lines[0] as string[]).map((_, i) =>
    Math.max(...lines.map((l) => (l[i] ?? '').length)),
  );
  const fmt = (l: string[]): string => l.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(
    `\nMetrics collection (best of N; CPU = process.cpuUsage)\n${fmt(lines[0] as string[])}\n`,
  );
  process.stdout.write(`${fmt(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const l of lines.slice(1)) process.stdout.write(fmt(l) + '\n');
}

export async function runMetricsBench(opts: {
  quick: boolean;
  sizes?: number[];
  shapes?: Shape[];
  rounds?: number;
}): Promise<Record<string, unknown>> {
  const sizes = opts.sizes ?? (opts.quick ? [1000] : [1000, 5000]);
  const shapes = opts.shapes ?? (['v1-cgroupfs', 'v2-cgroupfs'] as const);
  const rounds = opts.rounds ?? (opts.quick ? 3 : 5);
  const rows = [];
  for (const shape of shapes) {
    for (const n of sizes) rows.push(await measure(shape, n, rounds));
  }
  const fsRefresh = await measureFsRefresh(opts.quick ? 200 : 1000, 50, Math.min(rounds, 3));
  const perContainerSeries = Math.round((rows[0]?.series ?? 0) / (rows[0]?.containers ?? 1));
  const baseline = await promClientBaseline(1000, perContainerSeries);
  printTable(rows);
  process.stdout.write(
    `\nprom-client baseline (${perContainerSeries} series per container, 1,000 containers): ` +
      `set + render ${f1(baseline.set_and_render_cpu_ms)} ms CPU, ${f1(baseline.set_and_render_wall_ms)} ms wall, ` +
      `${(baseline.bytes / 1024 / 1024).toFixed(1)} MiB\n`,
  );
  process.stdout.write(
    `\nwritable-layer refresh (container_fs_usage_bytes; ${fsRefresh.containers} layers of ` +
      `${fsRefresh.entries_per_layer} entries, on its own interval, not per scrape): ` +
      `${f1(fsRefresh.refresh_cpu_ms)} ms CPU, ${f1(fsRefresh.refresh_wall_ms)} ms wall per refresh, ` +
      `${fsRefresh.cpu_ms_per_container.toFixed(3)} ms CPU per container\n`,
  );
  return {
    name: 'metrics-collection',
    fs_refresh: fsRefresh,
    goals: {
      issue14_cpu_ratio: GOAL_ADDITIONS_RATIO,
      collection_cpu_ms_per_container: GOAL_COLLECTION_CPU_MS_PER_CONTAINER,
      render_ms_per_container: GOAL_RENDER_MS_PER_CONTAINER,
    },
    rows,
    prom_client_baseline: baseline,
  };
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const arg = (name: string): string | undefined =>
    process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const sizes = arg('sizes')?.split(',').map(Number);
  const shapes = arg('shapes')
    ?.split(',')
    .map((s): Shape => (s.startsWith('v2') ? 'v2-cgroupfs' : 'v1-cgroupfs'));
  const rounds = arg('rounds') ? Number(arg('rounds')) : undefined;
  runMetricsBench({ quick: process.argv.includes('--quick'), sizes, shapes, rounds }).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
