// Issue 8, acceptance 4: the Dockerfile builds here (base image made from this machine's node,
// offline from-context target), and the image, started with the documented `docker run` line
// (adapted to the private dockerd's socket and data root, host networking instead of -p),
// serves metrics for the other containers and ships their logs over OTLP.
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  portOutsideEphemeralRange,
  runContainer,
  startOwnDockerd,
  TEST_IMAGE,
  TEST_LABEL,
  uniqueName,
  waitFor,
  type PrivateDockerd,
} from './harness/index.js';
import { allLogRecords, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { AGENT_IMAGE, buildAgentImage, documentedDockerRun } from './image-build.js';
import { AGENT_NODE_FLAGS } from '../../src/node-flags.js';

/** Maps the documented argv onto the private daemon; every documented mount must be handled. */
function adapt(
  documented: string[],
  o: { socket: string; dataRoot: string; name: string; volume: string; port: number; otlp: string },
): string[] {
  const out: string[] = [];
  const handled = new Set<string>();
  for (let i = 0; i < documented.length; i++) {
    const a = documented[i] as string;
    const next = documented[i + 1] ?? '';
    if (a === '--name') {
      out.push('--name', o.name);
      i++;
    } else if (a === '-p' || a === '--publish') {
      // the private dockerd has no bridge: host networking, and the test talks to 127.0.0.1
      out.push('--network', 'host');
      handled.add('publish');
      i++;
    } else if (a === '-v' || a === '--volume') {
      const [src = '', dst = '', ...rest] = next.split(':');
      let hostSide = src;
      if (src === '/var/run/docker.sock') hostSide = o.socket;
      else if (src === '/var/lib/docker') hostSide = o.dataRoot;
      else if (src === 'harbormaster-state') hostSide = o.volume;
      else if (src !== '/sys/fs/cgroup' && src !== '/proc')
        throw new Error(`the documented line mounts ${src}, which this test does not know`);
      handled.add(src);
      out.push('-v', [hostSide, dst, ...rest].join(':'));
      i++;
    } else if (a === '-e' && next.startsWith('OTEL_EXPORTER_OTLP_ENDPOINT=')) {
      out.push('-e', `OTEL_EXPORTER_OTLP_ENDPOINT=${o.otlp}`);
      handled.add('otlp');
      i++;
    } else if (i === documented.length - 1) {
      expect(a).toBe('harbormaster:latest');
      out.push(
        '-e',
        `HARBORMASTER_LISTEN=127.0.0.1:${o.port}`,
        '--label',
        `${TEST_LABEL}=1`,
        '--health-interval',
        '2s',
        AGENT_IMAGE,
      );
    } else out.push(a);
  }
  expect([...handled].sort()).toEqual(
    [
      '/proc',
      '/sys/fs/cgroup',
      '/var/lib/docker',
      '/var/run/docker.sock',
      'harbormaster-state',
      'otlp',
      'publish',
    ].sort(),
  );
  return out;
}

describeDocker('container image (Dockerfile, documented docker run line)', () => {
  let d: PrivateDockerd;
  let rx: OtlpReceiver;
  let url: string;
  const agentName = uniqueName('hm-agent-img');
  const workload = uniqueName('hm-img-workload');

  beforeAll(async () => {
    d = await startOwnDockerd();
    rx = await startOtlpReceiver();
    const { buildMs } = await buildAgentImage(d);
    process.stderr.write(`[image.test] docker build --target from-context: ${buildMs} ms\n`);
  });
  afterAll(async () => {
    await rx?.close();
  });

  it('has the OCI labels, health check, state volume, environment defaults and entrypoint', async () => {
    const inspect = JSON.parse(await d.dockerOk(['image', 'inspect', AGENT_IMAGE])) as {
      Config: {
        Labels: Record<string, string>;
        Healthcheck?: { Test: string[] };
        Volumes: Record<string, unknown>;
        Env: string[];
        Entrypoint: string[];
        Cmd: string[];
        ExposedPorts: Record<string, unknown>;
      };
    }[];
    const c = inspect[0]!.Config;
    expect(c.Labels['org.opencontainers.image.title']).toBe('harbormaster');
    expect(c.Labels['org.opencontainers.image.revision']).toBe('test');
    expect(c.Labels['org.opencontainers.image.licenses']).toBe('Apache-2.0');
    expect(c.Healthcheck?.Test.join(' ')).toContain('/healthz');
    expect(Object.keys(c.Volumes)).toEqual(['/var/lib/harbormaster']);
    expect(Object.keys(c.ExposedPorts)).toEqual(['9105/tcp']);
    for (const e of [
      'HARBORMASTER_CGROUP_ROOT=/host/sys/fs/cgroup',
      'HARBORMASTER_PROC_ROOT=/host/proc',
      'HARBORMASTER_DOCKER_ROOT=/host/var/lib/docker',
      'HARBORMASTER_STATE_DIR=/var/lib/harbormaster',
    ])
      expect(c.Env).toContain(e);
    expect(c.Entrypoint).toEqual(['node', ...AGENT_NODE_FLAGS, '/app/dist/src/cli.js']);
    expect(c.Cmd).toEqual(['run']);
    const version = await d.dockerOk(['run', '--rm', '--network', 'none', AGENT_IMAGE, 'version']);
    expect(version).toMatch(/^harbormaster \d+\.\d+\.\d+/);
  });

  it('started with the documented docker run line, serves metrics of other containers and ships their logs', async () => {
    await runContainer(
      [
        '-d',
        '--name',
        workload,
        TEST_IMAGE,
        'sh',
        '-c',
        'i=0; while true; do i=$((i+1)); echo "hm-image-line $i"; sleep 0.5; done',
      ],
      { docker: d },
    );
    const port = await portOutsideEphemeralRange();
    url = `http://127.0.0.1:${port}`;
    const args = adapt(await documentedDockerRun(), {
      socket: d.socketPath,
      dataRoot: d.dataRoot,
      name: agentName,
      volume: uniqueName('hm-state'),
      port,
      otlp: rx.url,
    });
    await d.dockerOk(args);
    const logsOf = async (): Promise<string> => {
      const r = await d.docker(['logs', '--tail', '30', agentName]);
      return r.stdout + r.stderr;
    };
    try {
      await waitFor(
        async () => (await fetch(`${url}/readyz`)).status === 200,
        60_000,
        250,
        'the agent container to be ready',
      );
      const containers = await waitFor(
        async () => {
          const list = (await (await fetch(`${url}/containers`)).json()) as { name: string }[];
          return list.some((c) => c.name === workload) ? list : undefined;
        },
        20_000,
        250,
        'the workload in /containers',
      );
      expect(containers.map((c) => c.name)).toContain(agentName);
      // cgroup counters through /host/sys/fs/cgroup
      const metrics = await waitFor(
        async () => {
          const text = await (await fetch(`${url}/metrics`)).text();
          const ok = [
            'container_cpu_usage_seconds_total',
            'container_memory_working_set_bytes',
          ].every((m) =>
            text.split('\n').some((l) => l.startsWith(`${m}{`) && l.includes(`name="${workload}"`)),
          );
          return ok ? text : undefined;
        },
        30_000,
        500,
        'cgroup metrics of the workload',
      );
      expect(metrics).toContain(`name="${workload}"`);
      // logs through /host/var/lib/docker/containers, shipped over OTLP
      const shipped = await waitFor(
        () => {
          const l = allLogRecords(rx.logs()).filter(
            (r) =>
              r.resource['container.name'] === workload &&
              JSON.stringify(r.body).includes('hm-image-line'),
          );
          return l.length > 0 ? l : undefined;
        },
        30_000,
        250,
        'shipped log records of the workload',
      );
      expect(shipped.length).toBeGreaterThan(0);
      // HEALTHCHECK (node probe of /healthz)
      await waitFor(
        async () =>
          (
            await d.dockerOk(['inspect', '--format', '{{.State.Health.Status}}', agentName])
          ).trim() === 'healthy',
        30_000,
        500,
        'the health check to pass',
      );
      // doctor inside the running container: nothing fails (the port is in use by the agent: warn)
      const doc = await d.docker([
        'exec',
        agentName,
        'node',
        '/app/dist/src/cli.js',
        'doctor',
        '--output',
        'json',
      ]);
      const report = JSON.parse(doc.stdout) as { checks: { id: string; status: string }[] };
      expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
      expect(report.checks.find((c) => c.id === 'listen')?.status).toBe('warn');
      expect(doc.code).toBe(1);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent container log:\n${await logsOf()}`, {
        cause: e,
      });
    } finally {
      await d.docker(['rm', '-f', '-v', agentName]);
    }
  });
});
