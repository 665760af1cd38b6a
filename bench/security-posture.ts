/**
 * Cost of the security posture families on a scrape (issue 18 goal: with posture on, a /metrics
 * scrape of 1,000 containers stays within 5 % of the collection benchmark without it).
 *
 * Builds the synthetic v1 cgroup tree of bench/metrics-collection.ts for 1,000 containers with
 * varied postures (privileged, added capabilities, socket and sensitive mounts, host namespaces,
 * users, limits), then measures, interleaved round by round so both see the same machine state:
 * - baseline: one scrape (MetricsExporter.renderBody: a full cgroup collection + render) with the
 *   container metrics only;
 * - with posture: the same scrape with the SecurityMetrics provider added;
 * and, for the posture alone: the render of a scrape, and re-judging every container (what an
 * inventory re-sync costs; a single change re-judges one container).
 *
 *   npm run build && node dist/bench/security-posture.js [--quick] [--containers=N] [--rounds=N]
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { ContainerMetrics } from '../src/collectors/containers.js';
import { SecurityMetrics } from '../src/collectors/security.js';
import type { ContainerInfo, ContainerSecurity, ContainerSource } from '../src/docker/types.js';
import { MetricsExporter } from '../src/exporters/prometheus.js';
import { createApp } from '../src/server/app.js';
import { makeContainerInfo } from '../test/support/container-info.js';
import { printTable } from './common.js';
import { buildTree } from './metrics-collection.js';

const GOAL_RATIO = 1.05;

function hexId(i: number): string {
  return i.toString(16).padStart(8, '0').repeat(8);
}

function security(i: number): ContainerSecurity {
  return {
    privileged: i % 97 === 0,
    user: i % 3 === 0 ? '1000:1000' : '',
    usernsMode: '',
    capAdd: i % 11 === 0 ? ['NET_ADMIN', 'SYS_PTRACE'] : [],
    capDrop: i % 5 === 0 ? ['ALL'] : [],
    securityOpt: i % 4 === 0 ? ['no-new-privileges'] : i % 53 === 0 ? ['seccomp=unconfined'] : [],
    readOnlyRootfs: i % 4 === 0,
    pidMode: i % 41 === 0 ? 'host' : '',
    ipcMode: 'private',
    utsMode: '',
    cgroupnsMode: 'host',
    binds:
      i % 29 === 0
        ? [{ source: '/var/run/docker.sock', destination: '/var/run/docker.sock', readOnly: false }]
        : i % 7 === 0
          ? [{ source: '/etc/ssl/certs', destination: '/etc/ssl/certs', readOnly: true }]
          : [{ source: `/srv/data/${i}`, destination: '/data', readOnly: false }],
  };
}

function info(i: number): ContainerInfo {
  const base = makeContainerInfo({ id: hexId(i) });
  return makeContainerInfo({
    id: hexId(i),
    name: `svc-${i % 50}-replica-${i}`,
    image: `registry.example.com/team/app-${i % 20}:1.${i % 7}.0`,
    labels: {
      'com.docker.compose.project': `proj${i % 10}`,
      'com.docker.compose.service': `svc-${i % 50}`,
    },
    pid: 4242,
    networkMode: i % 37 === 0 ? 'host' : 'bridge',
    spec: { ...base.spec, memoryLimit: i % 2 ? 256 << 20 : 0, pidsLimit: i % 3 ? 100 : 0 },
    security: security(i),
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

async function timed<T>(fn: () => Promise<T> | T): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await fn();
  return { cpu: cpuMs(process.cpuUsage(c0)), wall: performance.now() - w0 };
}

/** GET url; resolves with the wall time until the last byte. */
function httpGetMs(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(performance.now() - t0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function serve(metrics: MetricsExporter): Promise<{ url: string; server: http.Server }> {
  const app = createApp({
    metrics,
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => [],
  });
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- koa's request handler
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

export async function runSecurityBench(opts: {
  quick?: boolean;
  containers?: number;
  rounds?: number;
}) {
  const n = opts.containers ?? 1000;
  const rounds = opts.rounds ?? (opts.quick ? 15 : 60);
  const tree = await buildTree('v1-cgroupfs', n);
  const logger = pino({ level: 'silent' });
  const list = Array.from({ length: n }, (_, i) => info(i));
  const src = new Source(list);
  const allowlist = ['com.docker.compose.project', 'com.docker.compose.service'];
  // one collector for both exporters: two would share the process's open-file limit
  const cm = new ContainerMetrics({
    inventory: src,
    logger,
    registry: undefined,
    cgroupRoot: tree.cgroupRoot,
    procRoot: tree.procRoot,
    minIntervalMs: 0,
    labelAllowlist: allowlist,
  });
  const without = new MetricsExporter();
  without.addProvider(cm);
  const withPosture = new MetricsExporter();
  const sec = new SecurityMetrics({
    inventory: src,
    logger,
    labelAllowlist: allowlist,
    allow: ['docker_socket@name=svc-1-*'],
  });
  withPosture.addProvider(cm);
  withPosture.addProvider(sec);
  try {
    cm.start();
    sec.start();
    const scrape = (e: MetricsExporter) => e.renderBody(false).then((b) => (b.release(), b.length));
    // warm-up: probes, open files, JIT
    for (let i = 0; i < 3; i++) {
      await scrape(without);
      await scrape(withPosture);
    }
    const a: number[] = [];
    const b: number[] = [];
    const aw: number[] = [];
    const bw: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which goes first, so neither always gets the warmer cache
      const first = r % 2 === 0;
      const x = first ? await timed(() => scrape(without)) : undefined;
      const y = await timed(() => scrape(withPosture));
      const x2 = x ?? (await timed(() => scrape(without)));
      a.push(x2.cpu);
      aw.push(x2.wall);
      b.push(y.cpu);
      bw.push(y.wall);
    }
    // a whole GET /metrics through the koa app on loopback (writing the larger body included)
    const httpA = await serve(without);
    const httpB = await serve(withPosture);
    const ga: number[] = [];
    const gb: number[] = [];
    for (let r = 0; r < Math.max(5, rounds / 3); r++) {
      ga.push(await httpGetMs(httpA.url));
      gb.push(await httpGetMs(httpB.url));
    }
    httpA.server.close();
    httpB.server.close();
    const bytesA = await scrape(without);
    const bytesB = await scrape(withPosture);
    const postureText = sec.render();
    const postureSeries = postureText.split('\n').filter((l) => l && !l.startsWith('#')).length;
    // posture alone: a cached scrape, and re-judging every container (a re-sync)
    const cached: number[] = [];
    for (let r = 0; r < rounds; r++) cached.push((await timed(() => sec.renderChunks())).cpu);
    const rejudge: number[] = [];
    for (let r = 0; r < Math.max(3, rounds / 5); r++) {
      const s2 = new SecurityMetrics({ inventory: src, logger, labelAllowlist: allowlist });
      rejudge.push(
        (
          await timed(() => {
            s2.start();
            s2.renderChunks();
          })
        ).cpu,
      );
      s2.stop();
    }
    const result = {
      containers: n,
      rounds,
      scrape_cpu_ms_without: median(a),
      scrape_cpu_ms_with_posture: median(b),
      ratio_cpu: median(b) / median(a),
      scrape_wall_ms_without: median(aw),
      scrape_wall_ms_with_posture: median(bw),
      ratio_wall: median(bw) / median(aw),
      http_get_wall_ms_without: median(ga),
      http_get_wall_ms_with_posture: median(gb),
      ratio_http_get_wall: median(gb) / median(ga),
      bytes_without: bytesA,
      bytes_with_posture: bytesB,
      posture_series: postureSeries,
      posture_scrape_cpu_ms: median(cached),
      posture_rejudge_all_cpu_ms: median(rejudge),
      goal_ratio: GOAL_RATIO,
      within_goal: median(b) / median(a) <= GOAL_RATIO,
    };
    printTable(
      `Security posture on a scrape (${n} containers, median of ${rounds} interleaved rounds, v1 tree)`,
      [
        {
          what: 'scrape without posture (baseline)',
          cpu_ms: result.scrape_cpu_ms_without,
          wall_ms: result.scrape_wall_ms_without,
          bytes: bytesA,
        },
        {
          what: 'scrape with posture',
          cpu_ms: result.scrape_cpu_ms_with_posture,
          wall_ms: result.scrape_wall_ms_with_posture,
          bytes: bytesB,
        },
        {
          what: 'ratio (goal <= 1.05)',
          cpu_ms: result.ratio_cpu,
          wall_ms: result.ratio_wall,
          bytes: bytesB / bytesA,
        },
        {
          what: 'GET /metrics without / with posture (wall)',
          cpu_ms: '',
          wall_ms: `${median(ga).toFixed(1)} / ${median(gb).toFixed(1)}`,
          bytes: '',
        },
        {
          what: `posture alone, per scrape (${postureSeries} series)`,
          cpu_ms: result.posture_scrape_cpu_ms,
          wall_ms: '',
          bytes: '',
        },
        {
          what: 'posture: re-judge every container (re-sync)',
          cpu_ms: result.posture_rejudge_all_cpu_ms,
          wall_ms: '',
          bytes: '',
        },
      ],
    );
    return result;
  } finally {
    cm.stop();
    sec.stop();
    rmSync(tree.root, { recursive: true, force: true });
  }
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const arg = (k: string): number | undefined => {
    const a = process.argv.find((x) => x.startsWith(`--${k}=`));
    return a ? Number(a.slice(k.length + 3)) : undefined;
  };
  runSecurityBench({
    quick: process.argv.includes('--quick'),
    containers: arg('containers'),
    rounds: arg('rounds'),
  }).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
