// Issue 12, acceptance 6: the image runs with --read-only --cap-drop ALL --security-opt
// no-new-privileges as a non-root user (10001) with the Docker socket's group, and serves the
// metrics of other containers.
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOtlpReceiver, allLogRecords, type OtlpReceiver } from '../support/otlp-receiver.js';
import { buildAgentImage } from './image-build.js';
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

describeDocker('least-privilege container (issue 12)', () => {
  let d: PrivateDockerd;
  let rx: OtlpReceiver;
  let url = '';
  const agentName = uniqueName('hm-least-priv');
  const workload = uniqueName('hm-lp-workload');
  let workloadId = '';

  beforeAll(async () => {
    d = await startOwnDockerd();
    rx = await startOtlpReceiver();
    const { image } = await buildAgentImage(d);
    workloadId = (
      await runContainer(
        [
          '-d',
          '--name',
          workload,
          TEST_IMAGE,
          'sh',
          '-c',
          'i=0; while true; do i=$((i+1)); echo "lp-line $i"; sleep 0.5; done',
        ],
        { docker: d },
      )
    ).stdout.trim();
    const gid = (await stat(d.socketPath)).gid;
    const port = await portOutsideEphemeralRange();
    url = `http://127.0.0.1:${port}`;
    await d.dockerOk([
      'run',
      '-d',
      '--name',
      agentName,
      '--label',
      `${TEST_LABEL}=1`,
      '--read-only',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--user',
      '10001:10001',
      '--group-add',
      String(gid),
      '--network',
      'host',
      '-v',
      `${d.socketPath}:/var/run/docker.sock:ro`,
      '-v',
      '/sys/fs/cgroup:/host/sys/fs/cgroup:ro',
      '-v',
      '/proc:/host/proc:ro',
      '-v',
      `${uniqueName('hm-lp-state')}:/var/lib/harbormaster`,
      '-e',
      `HARBORMASTER_LISTEN=127.0.0.1:${port}`,
      '-e',
      'HARBORMASTER_DOCKER_LOG_SOURCE=api',
      '-e',
      `OTEL_EXPORTER_OTLP_ENDPOINT=${rx.url}`,
      image,
    ]);
  });

  afterAll(async () => {
    await rx?.close();
  });

  it('runs as uid 10001 with no capabilities and serves the metrics of other containers', async () => {
    const inspect = JSON.parse(await d.dockerOk(['inspect', agentName])) as Array<{
      Config: { User: string };
      HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[]; SecurityOpt: string[] };
    }>;
    expect(inspect[0]?.Config.User).toBe('10001:10001');
    expect(inspect[0]?.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect[0]?.HostConfig.CapDrop).toEqual(['ALL']);
    expect(inspect[0]?.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    const logs = async (): Promise<string> => {
      const r = await d.docker(['logs', '--tail', '30', agentName]);
      return r.stdout + r.stderr;
    };
    const text = await waitFor(
      async () => {
        const t = await (await fetch(`${url}/metrics`)).text();
        return t
          .split('\n')
          .some(
            (l) =>
              l.startsWith('container_memory_working_set_bytes{') &&
              l.includes(`name="${workload}"`),
          )
          ? t
          : undefined;
      },
      60_000,
      500,
      'metrics of the workload from the least-privilege agent',
    ).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\nagent logs:\n${await logs()}`);
    });
    expect(text).toContain('harbormaster_build_info');
    const status = (
      await d.dockerOk(['inspect', '--format', '{{.State.Status}}', agentName])
    ).trim();
    expect(status).toBe('running');
  });

  // A non-root agent cannot read json-file logs (0640 root); it ships them through the Engine API
  // with docker.log_source: api.
  it('ships the logs of other containers', async () => {
    await waitFor(
      () => allLogRecords(rx.logs()).some((r) => r.resource['container.id'] === workloadId),
      30_000,
      500,
      'a log record of the workload',
    );
  });
});
