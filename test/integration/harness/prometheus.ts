// A real Prometheus server (Debian's package) for integration tests: scrapes the given targets on
// 127.0.0.1 and answers PromQL queries.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { waitFor } from './agent.js';
import { listeningPorts } from './exec.js';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  readonly url: string;
  /** Instant query; throws with Prometheus' error message when the query is invalid. */
  query(expr: string): Promise<PromSample[]>;
  /** Waits until every target has been scraped successfully at least once. */
  waitForTargets(timeoutMs?: number): Promise<void>;
  /**
   * Waits until Prometheus has stored `n` more successful scrapes of the job than when called
   * (instead of sleeping "a few scrape intervals", which a loaded machine can stretch).
   */
  waitForScrapes(n: number, timeoutMs?: number): Promise<void>;
  /** Stops this server and deletes its data. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** host:port of each target (the agent's listen address). */
  targets: string[];
  /**
   * Instead of fixed targets, a file_sd JSON file re-read every second (for agents that restart
   * on another port); every target then gets the same `instance` label.
   */
  targetsFile?: string;
  job?: string;
  scrapeIntervalSeconds?: number;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
}

const running = new Set<PrometheusServer>();
afterAll(async () => {
  await Promise.all([...running].map((p) => p.stop()));
});

/** Starts /usr/bin/prometheus on a free loopback port with a temp config and storage. */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hm-prom-'));
  const interval = opts.scrapeIntervalSeconds ?? 1;
  const config = [
    'global:',
    `  scrape_interval: ${interval}s`,
    `  evaluation_interval: ${interval}s`,
    ...(opts.ruleFiles?.length
      ? ['rule_files:', ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)]
      : []),
    'scrape_configs:',
    `  - job_name: ${opts.job ?? 'harbormaster'}`,
    ...(opts.targetsFile
      ? [
          `    file_sd_configs: [{ files: [${JSON.stringify(opts.targetsFile)}], refresh_interval: 1s }]`,
          '    relabel_configs: [{ target_label: instance, replacement: agent }]',
        ]
      : [
          '    static_configs:',
          `      - targets: [${opts.targets.map((t) => `'${t}'`).join(', ')}]`,
        ]),
  ].join('\n');
  await writeFile(path.join(dir, 'prometheus.yml'), config + '\n');
  let output = '';
  const child: ChildProcess = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      // port 0: the kernel picks a free port, read back from /proc (no pick-then-bind race)
      '--web.listen-address=127.0.0.1:0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
  });
  const port = await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${output.slice(-2000)}`);
      const ports = await listeningPorts(child.pid ?? 0);
      return ports.length === 1 ? ports[0] : undefined;
    },
    30_000,
    100,
    'Prometheus to listen on its port',
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${output.slice(-2000)}`);
      return (await fetch(`${url}/-/ready`)).ok;
    },
    30_000,
    200,
    'Prometheus to be ready',
  );
  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: PromSample[] | [number, string] };
    };
    if (body.status !== 'success')
      throw new Error(`query ${expr} failed: ${body.error ?? res.status}`);
    const r = body.data?.result;
    if (body.data?.resultType === 'scalar' && Array.isArray(r))
      return [{ metric: {}, value: r as [number, string] }];
    return (r as PromSample[]) ?? [];
  };
  const server: PrometheusServer = {
    url,
    query,
    async waitForTargets(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const up = await query(`up{job="${opts.job ?? 'harbormaster'}"} == 1`);
          return up.length === opts.targets.length;
        },
        timeoutMs,
        250,
        'every target to be scraped',
      );
    },
    async waitForScrapes(n: number, timeoutMs = 60_000) {
      const job = opts.job ?? 'harbormaster';
      // successful scrapes stored so far (the sum over all targets of the job)
      const scrapes = async (): Promise<number> =>
        Number(
          (await query(`sum(count_over_time(up{job="${job}"}[1h]) and up{job="${job}"} == 1)`))[0]
            ?.value[1] ?? 0,
        );
      const from = await scrapes();
      await waitFor(async () => (await scrapes()) >= from + n, timeoutMs, 200, `${n} more scrapes`);
    },
    async stop() {
      running.delete(server);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  running.add(server);
  return server;
}
