// Issue 13, acceptance 1 and 2 (spans and log records): the agent, running with a hostname of its own (as in a
// container: a private UTS namespace), reports host.name = the daemon's name; a compose-labelled
// container's run spans carry service.name / service.namespace from its labels; the
// OTEL_RESOURCE_ATTRIBUTES entries are on every span resource. Real private dockerd, the built
// agent, and the protobuf-decoding OTLP receiver.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import {
  allLogRecords,
  allSpans,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../support/otlp-receiver.js';

const AGENT_HOSTNAME = 'hm-agent-own-uts';

/**
 * A node entry point that runs the real CLI in a new UTS namespace with its own hostname (what a
 * container gets), forwarding SIGTERM/SIGINT so the harness can stop it.
 */
async function utsWrapper(dir: string): Promise<string> {
  const cli = path.join(harness().repoRoot, 'dist', 'src', 'cli.js');
  const file = path.join(dir, 'uts-wrapper.mjs');
  await writeFile(
    file,
    `import { spawn } from 'node:child_process';
const child = spawn('unshare', ['--uts', 'sh', '-c',
  'hostname "$0" && exec "$@"', ${JSON.stringify(AGENT_HOSTNAME)}, process.execPath,
  ${JSON.stringify(cli)}, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => child.kill(s));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
`,
  );
  await chmod(file, 0o755);
  return file;
}

describeDocker('resource identity on spans and logs (issue 13)', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess;
  let dir: string;
  let daemon: { Name: string; ID: string };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hm-otel-id-'));
    rx = await startOtlpReceiver();
    daemon = JSON.parse(
      await getDocker().dockerOk(['info', '--format', '{{json .}}']),
    ) as typeof daemon;
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      cliPath: await utsWrapper(dir),
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '',
        HARBORMASTER_HOST_NAME: '',
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=a%2Cb',
      },
    });
    await waitFor(
      async () => (await agent.get('/readyz')).status === 200,
      30_000,
      100,
      'agent ready',
    );
  });
  afterAll(async () => {
    await agent?.stop();
    await rx?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const spansNamed = (name: string) =>
    allSpans(rx.traces()).filter((s) => s.resource['container.name'] === name);

  it("names the host after the daemon, not the agent's own hostname, and adds OTEL_RESOURCE_ATTRIBUTES", async () => {
    expect(daemon.Name).not.toBe(AGENT_HOSTNAME);
    const name = uniqueName('hm-id-plain');
    await runContainer(
      ['--name', name, TEST_IMAGE, 'sh', '-c', 'echo hm-identity-line; sleep 1; exit 3'],
      {
        allowFailure: true,
      },
    );
    const [span] = await waitFor(
      () => (spansNamed(name).length > 0 ? spansNamed(name) : undefined),
      30_000,
      200,
      'the run span of the plain container',
    );
    expect(span?.resource).toMatchObject({
      'host.name': daemon.Name,
      'host.id': daemon.ID,
      'os.type': 'linux',
      'deployment.environment': 'prod',
      team: 'a,b',
      'service.name': name,
      'container.name': name,
    });
    expect(span?.resource['service.namespace']).toBeUndefined();
    // log records of the same container carry the same identity (src/docker/identity.ts)
    const [rec] = await waitFor(
      () => {
        const l = allLogRecords(rx.logs()).filter((r) => r.resource['container.name'] === name);
        return l.length > 0 ? l : undefined;
      },
      30_000,
      200,
      'a log record of the plain container',
    );
    expect(rec?.resource).toMatchObject({
      'host.name': daemon.Name,
      'host.id': daemon.ID,
      'deployment.environment': 'prod',
      team: 'a,b',
      'service.name': name,
      'container.name': name,
    });
    expect(rec?.resource['service.namespace']).toBeUndefined();
  });

  it('takes service.name and service.namespace from compose labels', async () => {
    const name = uniqueName('shop-web');
    await runContainer([
      '--name',
      name,
      '--label',
      'com.docker.compose.service=web',
      '--label',
      'com.docker.compose.project=shop',
      TEST_IMAGE,
      'sh',
      '-c',
      'echo hm-compose-line; sleep 1; exit 0',
    ]);
    const [span] = await waitFor(
      () => (spansNamed(name).length > 0 ? spansNamed(name) : undefined),
      30_000,
      200,
      'the run span of the compose-labelled container',
    );
    expect(span?.resource).toMatchObject({
      'service.name': 'web',
      'service.namespace': 'shop',
      'host.name': daemon.Name,
      'deployment.environment': 'prod',
      team: 'a,b',
    });
    expect(String(span?.resource['service.instance.id'])).toMatch(/^[0-9a-f]{64}$/);
    const [rec] = await waitFor(
      () => {
        const l = allLogRecords(rx.logs()).filter((r) => r.resource['container.name'] === name);
        return l.length > 0 ? l : undefined;
      },
      30_000,
      200,
      'a log record of the compose-labelled container',
    );
    expect(rec?.body?.stringValue).toBe('hm-compose-line');
    expect(rec?.resource).toMatchObject({
      'service.name': 'web',
      'service.namespace': 'shop',
      'service.instance.id': span?.resource['service.instance.id'],
      'host.name': daemon.Name,
      'deployment.environment': 'prod',
      team: 'a,b',
    });
  });
});
