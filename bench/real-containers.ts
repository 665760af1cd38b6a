// Benchmarks with real containers on a private dockerd: the agent's collection and /metrics
// against the Docker stats API baseline (as peers use it), and the idle footprint.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateDockerd, type PrivateDockerd } from '../test/integration/harness/dockerd.js';
import { TEST_IMAGE, ensureTestImage } from '../test/integration/harness/image.js';
import { MiB, printTable, procCpuSeconds, procMemory, sleep } from './common.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Agent {
  child: ChildProcess;
  url: string;
}

async function startAgent(dockerHost: string): Promise<Agent> {
  const cli = join(repoRoot, 'dist/src/cli.js');
  const child = spawn(
    process.execPath,
    [cli, 'run', '--listen', '127.0.0.1:0', '--state-dir', join(repoRoot, '.tmp/bench-state')],
    {
      env: { ...process.env, DOCKER_HOST: dockerHost, HARBORMASTER_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let buf = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`agent did not start: ${buf.slice(-2000)}`)),
      30_000,
    );
    child.stderr?.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /"address":"([^"]+)"/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    child.on('exit', (code) => reject(new Error(`agent exited ${code}: ${buf.slice(-2000)}`)));
  });
  return { child, url };
}

function get(
  url: string,
  socketPath?: string,
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(
      socketPath ? { socketPath, path: url, headers: { host: 'docker' } } : url,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - t0,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

function pidsOf(pattern: RegExp): number[] {
  // dockerd + containerd of the private daemon, by their command lines
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (pattern.test(cmd)) out.push(Number(d));
    } catch {
      /* exited */
    }
  }
  return out;
}

function cpuOf(pids: number[]): number {
  let s = 0;
  for (const p of pids) {
    try {
      s += procCpuSeconds(p);
    } catch {
      /* gone */
    }
  }
  return s;
}

export interface RealContainersResult {
  containers: number;
  statsApi: {
    wallSeconds: number;
    meanLatencySeconds: number;
    daemonCpuSecondsPerContainer: number;
  };
  agent: {
    cpuSecondsPerScrape: number;
    cpuMsPerContainer: number;
    renderMs: number;
    metricsBytes: number;
    rssMiB: number;
  };
  ratioTimePerContainer: number;
  idle: {
    containers: number;
    seconds: number;
    cpuShareOfOneCore: number;
    rssMiB: number;
    peakRssMiB: number;
  };
}

export async function runRealContainersBench(opts: {
  quick: boolean;
  /** CI: 5 containers, a short idle phase: shows the bench runs, not the figures */
  smoke?: boolean;
}): Promise<RealContainersResult> {
  const n = opts.smoke ? 5 : opts.quick ? 20 : 100;
  const idleSeconds = opts.smoke ? 5 : opts.quick ? 30 : 120;
  const d: PrivateDockerd = await startPrivateDockerd();
  let agent: Agent | undefined;
  try {
    await ensureTestImage(d);
    process.stdout.write(`starting ${n} containers on a private dockerd...\n`);
    const ids: string[] = [];
    for (let i = 0; i < n; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, (_, j) =>
          d.dockerOk([
            'run',
            '-d',
            '--network',
            'none',
            '--name',
            `bench-${i + j}`,
            TEST_IMAGE,
            'sleep',
            '86400',
          ]),
        ),
      );
      ids.push(...batch.map((s) => s.trim()));
    }

    // Baseline: the Docker stats API, all containers in parallel, one-shot where the API has it.
    const daemonPids = pidsOf(new RegExp(d.dir.replaceAll('/', '\\/')));
    const cpu0 = cpuOf(daemonPids);
    const t0 = performance.now();
    const latencies = await Promise.all(
      ids.map(
        async (id) =>
          (await get(`/v1.41/containers/${id}/stats?stream=false&one-shot=true`, d.socketPath)).ms,
      ),
    );
    const statsWall = (performance.now() - t0) / 1000;
    const daemonCpu = cpuOf(daemonPids) - cpu0;
    const meanLatency = latencies.reduce((a, b) => a + b, 0) / latencies.length / 1000;

    agent = await startAgent(d.host);
    const pid = agent.child.pid ?? 0;
    // wait for the inventory, then warm up
    for (let i = 0; i < 100; i++) {
      if ((await get(`${agent.url}/readyz`)).status === 200) break;
      await sleep(100);
    }
    await get(`${agent.url}/metrics`);
    const scrapes = opts.smoke ? 2 : 5;
    let renderMs = 0;
    let bytes = 0;
    const a0 = procCpuSeconds(pid);
    for (let i = 0; i < scrapes; i++) {
      await sleep(1100); // past the minimum collection interval: each scrape collects afresh
      const r = await get(`${agent.url}/metrics`);
      renderMs += r.ms;
      bytes = Buffer.byteLength(r.body);
    }
    const agentCpuPerScrape = (procCpuSeconds(pid) - a0) / scrapes;
    const mem = procMemory(pid);

    // Idle footprint: the same containers (n >= 50 in full mode), a scrape every 15 s.
    const idleN = Math.min(n, 50);
    if (n > idleN) await d.dockerOk(['rm', '-f', ...ids.slice(idleN)]);
    // steady state: start-up work (module compilation, V8's idle-time GC) is over after ~30 s
    await sleep(opts.smoke ? 2_000 : opts.quick ? 15_000 : 30_000);
    const i0 = procCpuSeconds(pid);
    const w0 = performance.now();
    while (performance.now() - w0 < idleSeconds * 1000) {
      await get(`${agent.url}/metrics`);
      await sleep(Math.min(15_000, idleSeconds * 1000 - (performance.now() - w0)));
    }
    const idleShare = (procCpuSeconds(pid) - i0) / ((performance.now() - w0) / 1000);
    const idleMem = procMemory(pid);

    const result: RealContainersResult = {
      containers: n,
      statsApi: {
        wallSeconds: statsWall,
        meanLatencySeconds: meanLatency,
        daemonCpuSecondsPerContainer: daemonCpu / n,
      },
      agent: {
        cpuSecondsPerScrape: agentCpuPerScrape,
        cpuMsPerContainer: (agentCpuPerScrape * 1000) / n,
        renderMs: renderMs / scrapes,
        metricsBytes: bytes,
        rssMiB: mem.rss / MiB,
      },
      ratioTimePerContainer: meanLatency / Math.max(1e-9, agentCpuPerScrape / n),
      idle: {
        containers: idleN,
        seconds: idleSeconds,
        cpuShareOfOneCore: idleShare,
        rssMiB: idleMem.rss / MiB,
        peakRssMiB: idleMem.peak / MiB,
      },
    };
    printTable(`Real containers (${n}) — agent vs Docker stats API (one-shot, parallel)`, [
      {
        what: 'Docker stats API',
        'per container': `${(meanLatency * 1000).toFixed(1)} ms latency`,
        'daemon CPU/container': `${(result.statsApi.daemonCpuSecondsPerContainer * 1000).toFixed(2)} ms`,
        'wall (all)': `${statsWall.toFixed(2)} s`,
      },
      {
        what: 'harbormaster scrape',
        'per container': `${result.agent.cpuMsPerContainer.toFixed(3)} ms CPU`,
        'daemon CPU/container': '0',
        'wall (all)': `${(result.agent.renderMs / 1000).toFixed(3)} s`,
      },
    ]);
    process.stdout.write(
      `  ratio (stats API latency per container / agent CPU per container): ${result.ratioTimePerContainer.toFixed(0)}x; /metrics ${(bytes / 1024).toFixed(0)} KiB, RSS ${result.agent.rssMiB.toFixed(1)} MiB\n`,
    );
    printTable(`Idle footprint (${idleN} idle containers, scrape every 15 s, ${idleSeconds} s)`, [
      {
        'CPU share of one core': `${(idleShare * 100).toFixed(3)} %`,
        'RSS MiB': result.idle.rssMiB,
        'peak RSS MiB': result.idle.peakRssMiB,
        goal: '<= 0.5 % and <= 80 MiB',
      },
    ]);
    return result;
  } finally {
    agent?.child.kill('SIGTERM');
    await d.destroy();
  }
}
