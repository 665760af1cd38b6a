// Issue 8, acceptance 5: deploy/swarm/stack.yaml deploys on a single-node swarm of a private
// dockerd with the locally built image; the agent's global task serves metrics (host network,
// 127.0.0.1), and Prometheus with deploy/swarm/prometheus.yml finds it through Swarm service
// discovery (dockerswarm_sd_configs, role nodes: see that file for why not role tasks).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  listeningPorts,
  portOutsideEphemeralRange,
  harness,
  runContainer,
  startOwnDockerd,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type PrivateDockerd,
} from './harness/index.js';
import { which } from './harness/exec.js';
import { AGENT_IMAGE, buildAgentImage } from './image-build.js';

describeDocker('Swarm stack (deploy/swarm)', () => {
  let d: PrivateDockerd;
  let tmp: string;
  let prometheus: ChildProcess | undefined;
  const stack = uniqueName('hmstack')
    .replace(/[^a-z0-9]/gi, '')
    .slice(0, 30);

  beforeAll(async () => {
    d = await startOwnDockerd();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hm-swarm-'));
    const { buildMs } = await buildAgentImage(d);
    process.stderr.write(`[swarm.test] image build: ${buildMs} ms\n`);
    const listen = await portOutsideEphemeralRange();
    await d.dockerOk(
      ['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${listen}`],
      { timeoutMs: 60_000 },
    );
  });
  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus?.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (d?.running) {
      await d.docker(['stack', 'rm', stack]);
      await d.docker(['swarm', 'leave', '--force'], { timeoutMs: 60_000 });
    }
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs the agent as a global service whose task serves metrics, found by Swarm service discovery', async () => {
    const repo = harness().repoRoot;
    const port = await portOutsideEphemeralRange();
    // No registry here: the Prometheus service of the stack gets no task (replicas 0) so nothing
    // is pulled; the real Prometheus runs on the host below with the stack's prometheus.yml.
    const override = path.join(tmp, 'override.yaml');
    await writeFile(
      override,
      `version: "3.8"\nservices:\n  prometheus:\n    image: ${TEST_IMAGE}\n    deploy:\n      replicas: 0\n`,
    );
    const workload = uniqueName('hm-swarm-workload');
    await runContainer(['-d', '--name', workload, TEST_IMAGE, 'sleep', '3600'], { docker: d });
    const deployed = await d.docker(
      [
        'stack',
        'deploy',
        '--resolve-image',
        'never',
        '-c',
        path.join(repo, 'deploy/swarm/stack.yaml'),
        '-c',
        override,
        stack,
      ],
      {
        timeoutMs: 120_000,
        env: {
          HARBORMASTER_IMAGE: AGENT_IMAGE,
          HARBORMASTER_PORT: String(port),
          DOCKER_DATA_ROOT: d.dataRoot,
          DOCKER_SOCKET: d.socketPath,
        },
      },
    );
    expect(deployed.code, deployed.stderr).toBe(0);
    const mode = await d.dockerOk([
      'service',
      'inspect',
      '--format',
      '{{if .Spec.Mode.Global}}global{{else}}replicated{{end}}',
      `${stack}_agent`,
    ]);
    expect(mode.trim()).toBe('global');
    try {
      await waitFor(
        async () =>
          (
            await d.dockerOk([
              'service',
              'ps',
              '--filter',
              'desired-state=running',
              '--format',
              '{{.CurrentState}}',
              `${stack}_agent`,
            ])
          ).startsWith('Running'),
        90_000,
        500,
        'the global task to run',
      );
      const url = `http://127.0.0.1:${port}`;
      const list = await waitFor(
        async () => {
          const r = await fetch(`${url}/containers`);
          const l = (await r.json()) as { name: string; labels: Record<string, string> }[];
          return l.some((c) => c.name === workload) ? l : undefined;
        },
        60_000,
        500,
        "the task's agent to list the workload",
      );
      const self = list.find((c) => c.labels['com.docker.swarm.service.name'] === `${stack}_agent`);
      expect(self).toBeDefined();
      const metrics = await waitFor(
        async () => {
          const text = await (await fetch(`${url}/metrics`)).text();
          return text.includes(`container_cpu_usage_seconds_total{`) &&
            text.includes(`name="${workload}"`)
            ? text
            : undefined;
        },
        30_000,
        500,
        'metrics of the workload',
      );
      expect(metrics).toMatch(/^harbormaster_/m);

      // The stack's Prometheus config: Swarm service discovery finds the task and scrapes it.
      const promBin = await which('prometheus');
      if (!promBin) throw new Error('prometheus not found (Debian package prometheus)');
      const cfg = (await readFile(path.join(repo, 'deploy/swarm/prometheus.yml'), 'utf8'))
        .replace('unix:///var/run/docker.sock', d.host)
        .replace(/scrape_interval: \d+s/, 'scrape_interval: 1s')
        .replace(/refresh_interval: \d+s/, 'refresh_interval: 1s')
        .replace('$1:9105', `$1:${port}`);
      expect(cfg).toContain(d.host);
      await writeFile(path.join(tmp, 'prometheus.yml'), cfg);
      prometheus = spawn(
        promBin,
        [
          `--config.file=${path.join(tmp, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(tmp, 'tsdb')}`,
          '--web.listen-address=127.0.0.1:0', // port read back from /proc below
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let promLog = '';
      prometheus.stderr?.on('data', (b: Buffer) => (promLog += b.toString()));
      const promPid = prometheus.pid ?? 0;
      const promPort = await waitFor(
        async () => {
          const p = await listeningPorts(promPid);
          return p.length === 1 ? p[0] : undefined;
        },
        30_000,
        100,
        'Prometheus to listen',
      );
      let lastTargets = '';
      const target = await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`);
          lastTargets = await res.text();
          const r = JSON.parse(lastTargets) as {
            data: {
              activeTargets: {
                labels: Record<string, string>;
                health: string;
                scrapeUrl: string;
              }[];
            };
          };
          return r.data.activeTargets.find(
            (t) => t.labels.job === 'harbormaster' && t.health === 'up',
          );
        },
        60_000,
        500,
        'Prometheus to discover and scrape the task',
      ).catch((e: unknown) => {
        throw new Error(
          `${(e as Error).message}\ntargets: ${lastTargets.slice(0, 3000)}\nprometheus: ${promLog.slice(-2000)}`,
        );
      });
      expect(target.scrapeUrl).toBe(`http://127.0.0.1:${port}/metrics`);
      expect(target.labels.swarm_node_id).toBeTruthy();
    } catch (e) {
      const ps = await d.docker(['service', 'ps', '--no-trunc', `${stack}_agent`]);
      const logs = await d.docker(['service', 'logs', '--tail', '30', `${stack}_agent`]);
      throw new Error(
        `${(e as Error).message}\nservice ps:\n${ps.stdout}${ps.stderr}\nservice logs:\n${logs.stdout}${logs.stderr}`,
        { cause: e },
      );
    }
  });
});
