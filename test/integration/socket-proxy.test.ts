// Issue 12, acceptance 5: the agent behind a read-only Docker socket proxy (Debian's HAProxy with
// deploy/socket-proxy/haproxy.cfg, configured like the docker-socket-proxy images) over tcp://:
// inventory and metrics work, json-file logs are shipped, and a POST through the proxy is refused.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { allLogRecords, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import {
  describeDocker,
  exec,
  portOutsideEphemeralRange,
  getDocker,
  harness,
  pingDocker,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const ALLOWED = [
  'CONTAINERS',
  'EVENTS',
  'INFO',
  'SYSTEM',
  'VERSION',
  'PING',
  'NETWORKS',
  'VOLUMES',
];

describeDocker('behind the HAProxy socket proxy (issue 12)', () => {
  let proxy: ChildProcess;
  let proxyOut = '';
  let proxyUrl: string;
  let agent: AgentProcess;
  let rx: OtlpReceiver;

  beforeAll(async () => {
    const d = getDocker();
    const socket = d.host.replace(/^unix:\/\//, '');
    const port = await portOutsideEphemeralRange();
    proxyUrl = `tcp://127.0.0.1:${port}`;
    proxy = spawn(
      'haproxy',
      ['-db', '-f', path.join(harness().repoRoot, 'deploy/socket-proxy/haproxy.cfg')],
      {
        env: {
          ...process.env,
          SOCKET_PATH: socket,
          BIND_CONFIG: `127.0.0.1:${port}`,
          POST: '0',
          ...Object.fromEntries(ALLOWED.map((k) => [k, '1'])),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    proxy.stdout?.on('data', (c: Buffer) => (proxyOut = (proxyOut + c.toString()).slice(-5000)));
    proxy.stderr?.on('data', (c: Buffer) => (proxyOut = (proxyOut + c.toString()).slice(-5000)));
    await waitFor(() => pingDocker(proxyUrl), 15_000, 100, `haproxy to answer (${proxyOut})`);
    rx = await startOtlpReceiver();
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: proxyUrl,
      args: [
        '--docker-log-source',
        'file',
        '--docker-root',
        info.available ? info.dataRoot : '/var/lib/docker',
      ],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
      },
    });
    await agent.waitForLog((r) => r.msg === 'Harbormaster started.', 30_000);
  });

  afterAll(async () => {
    await agent?.stop();
    await rx?.close();
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((r) => proxy.once('exit', r));
    }
  });

  it('refuses a POST (403) and endpoints outside the allowlist', async () => {
    const post = await exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"Image":"x"}',
      `${proxyUrl.replace('tcp:', 'http:')}/containers/create`,
    ]);
    expect(post.stdout).toBe('403');
    const images = await exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${proxyUrl.replace('tcp:', 'http:')}/images/json`,
    ]);
    expect(images.stdout).toBe('403');
    const ok = await exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${proxyUrl.replace('tcp:', 'http:')}/containers/json`,
    ]);
    expect(ok.stdout).toBe('200');
  });

  it('keeps the inventory and metrics working, and ships json-file logs', async () => {
    const name = uniqueName('hm-proxy');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        TEST_IMAGE,
        'sh',
        '-c',
        'for i in 1 2 3 4 5; do echo "proxied line $i"; done; sleep 600',
      ])
    ).stdout.trim();
    await waitFor(
      async () => ((await agent.get('/containers')).text.includes(name) ? true : undefined),
      20_000,
      200,
      'the container in the inventory',
    );
    await waitFor(
      async () =>
        (await agent.get('/metrics')).text
          .split('\n')
          .some(
            (l) => l.startsWith('container_memory_usage_bytes{') && l.includes(`name="${name}"`),
          ),
      20_000,
      200,
      'metrics of the container',
    );
    const bodies = () =>
      allLogRecords(rx.logs())
        .filter((r) => r.resource['container.id'] === id)
        .map((r) => r.body?.stringValue);
    await waitFor(() => bodies().length === 5, 30_000, 200, 'the five lines at the receiver');
    expect(bodies()).toEqual([1, 2, 3, 4, 5].map((i) => `proxied line ${i}`));
    // nothing the agent does is refused by the proxy
    expect((await agent.get('/metrics')).text).not.toMatch(
      /^harbormaster_(docker|engine_metrics)_errors_total\{[^}]*\} [1-9]/m,
    );
  });

  it('reads json-file logs from the files with docker.log_source: file', async () => {
    const health = JSON.parse((await agent.get('/healthz')).text) as {
      components: Record<string, { detail?: string }>;
    };
    expect(health.components.logs?.detail).toMatch(/^[1-9]\d* log files, 0 Engine API log streams/);
  });
});
