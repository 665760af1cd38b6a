// Issue 13, acceptance 3 and 4 for logs: container logs reach a receiver whose certificate comes
// from a private CA (OTEL_EXPORTER_OTLP_CERTIFICATE); with a client-certificate requirement they
// are delivered with CLIENT_KEY/CLIENT_CERTIFICATE and refused without (counted, logged once);
// over OTLP/gRPC numbered lines survive a SIGKILL of the agent and a receiver answering
// UNAVAILABLE for 20 s (complete, duplicates at most one batch per kill), INVALID_ARGUMENT drops
// and counts, and a partial success is counted with its message. Real private dockerd, the built
// agent tailing the daemon's json-file logs, real TLS (openssl-made PKI), a real @grpc/grpc-js
// receiver and the protobuf-decoding HTTPS receiver, all on 127.0.0.1.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  sleep,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import { startOtlpGrpcReceiver, startOtlpHttpsReceiver } from '../support/otlp-grpc-receiver.js';
import { allLogRecords } from '../support/otlp-receiver.js';
import { makeTestPki, type TestPki } from '../support/tls.js';

const BATCH = 500;

async function agentWith(env: Record<string, string>, stateDir?: string): Promise<AgentProcess> {
  const info = harness().docker;
  const agent = await startAgent({
    dockerHost: getDocker().host,
    ...(stateDir ? { stateDir } : {}),
    args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '',
      OTEL_TRACES_EXPORTER: 'none',
      HARBORMASTER_METRICS_ENABLED: 'false',
      HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
      HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
      HARBORMASTER_LOGS_BATCH_MAX_RECORDS: String(BATCH),
      ...env,
    },
  });
  await waitFor(
    async () => (await agent.get('/readyz')).status === 200,
    30_000,
    100,
    'agent ready',
  );
  return agent;
}

/** Sum of a counter's samples whose line contains every one of `parts`. */
async function counter(agent: AgentProcess, name: string, ...parts: string[]): Promise<number> {
  const text = (await agent.get('/metrics')).text;
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && parts.every((p) => line.includes(p)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** A detached container printing `n` numbered lines (after a second, so the agent attaches). */
async function numbered(prefix: string, script: string): Promise<string> {
  const r = await runContainer([
    '-d',
    '--network',
    'none',
    '--name',
    uniqueName(prefix),
    TEST_IMAGE,
    'sh',
    '-c',
    `sleep 1; ${script}; sleep 3600`,
  ]);
  return r.stdout.trim();
}

type Requests = Parameters<typeof allLogRecords>[0];

/** Bodies of the log records of container `id` in `reqs`, in arrival order. */
function bodies(reqs: Requests, id: string): string[] {
  return allLogRecords(reqs)
    .filter((r) => r.resource['container.id'] === id)
    .map((r) => r.body?.stringValue ?? '');
}

describeDocker('OTLP transport for logs: TLS, mTLS, gRPC (issue 13)', () => {
  let pki: TestPki;
  const agents: AgentProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const containers: string[] = [];
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.kill().catch(() => undefined);
    for (const c of closers.splice(0)) await c();
    for (const id of containers.splice(0))
      await getDocker()
        .dockerOk(['rm', '-f', id])
        .catch(() => undefined);
  });
  afterAll(async () => {
    for (const a of agents.splice(0)) await a.kill().catch(() => undefined);
  });

  it('3a. delivers logs to a private-CA receiver with OTEL_EXPORTER_OTLP_CERTIFICATE', async () => {
    const rx = await startOtlpHttpsReceiver({
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
    });
    closers.push(() => rx.close());
    agents.push(
      await agentWith({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      }),
    );
    const id = await numbered('hm-logs-tls', 'seq 1 100');
    containers.push(id);
    const got = await waitFor(
      () => (bodies(rx.logs(), id).length >= 100 ? bodies(rx.logs(), id) : undefined),
      30_000,
      200,
      'the lines over TLS',
    );
    expect(new Set(got)).toEqual(new Set(Array.from({ length: 100 }, (_, i) => String(i + 1))));
  });

  it('3b. mTLS: delivered with CLIENT_KEY/CLIENT_CERTIFICATE; refused, counted and logged once without', async () => {
    const rx = await startOtlpHttpsReceiver({
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
      ca: pki.read('ca'),
      requireClientCert: true,
    });
    closers.push(() => rx.close());
    const good = await agentWith({
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `${rx.url}/v1/logs`,
      OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: pki.files.ca,
      OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: pki.files.clientKey,
      OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE: pki.files.clientCert,
    });
    agents.push(good);
    const first = await numbered('hm-logs-mtls', 'seq 1 10');
    containers.push(first);
    await waitFor(() => bodies(rx.logs(), first).length >= 10, 30_000, 200, 'the lines over mTLS');
    await good.stop();
    agents.splice(agents.indexOf(good), 1);

    const bare = await agentWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
    });
    agents.push(bare);
    const second = await numbered('hm-logs-nocert', 'seq 1 10');
    containers.push(second);
    await waitFor(
      async () => (await counter(bare, 'harbormaster_log_export_failures_total', 'retryable')) >= 3,
      30_000,
      250,
      'refused exports counted',
    );
    expect(rx.tlsErrors().length).toBeGreaterThanOrEqual(1);
    expect(bodies(rx.logs(), second)).toEqual([]);
    const warnings = bare
      .logs()
      .filter((r) => typeof r.msg === 'string' && r.msg.startsWith('Log export failed'));
    expect(warnings).toHaveLength(1);
  });

  it('4. gRPC: numbered lines across a SIGKILL and 20 s of UNAVAILABLE arrive complete', async () => {
    const rx = await startOtlpGrpcReceiver();
    closers.push(() => rx.close());
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-otel-logs-'));
    closers.push(() => rm(stateDir, { recursive: true, force: true }));
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
    let agent = await agentWith(env, stateDir);
    agents.push(agent);
    const N = 20_000;
    // 40 blocks of 500 lines, a quarter second apart: about ten seconds of writing
    const id = await numbered(
      'hm-logs-grpc',
      `i=0; while [ $i -lt 40 ]; do seq $((i*500+1)) $((i*500+500)); i=$((i+1)); sleep 0.25; done`,
    );
    containers.push(id);
    await waitFor(() => bodies(rx.logs(), id).length >= 2_000, 30_000, 50, 'the first lines');
    await agent.kill();
    agents.splice(agents.indexOf(agent), 1);
    rx.setBehaviour({ code: GrpcStatus.UNAVAILABLE, details: 'collector restarting' });
    const down = Date.now();
    const before = bodies(rx.logs(), id).length;
    agent = await agentWith(env, stateDir);
    agents.push(agent);
    await waitFor(
      () => rx.calls().some((c) => c.code === Number(GrpcStatus.UNAVAILABLE)),
      20_000,
      100,
      'the first refused export',
    );
    await sleep(Math.max(0, 20_000 - (Date.now() - down)));
    expect(bodies(rx.logs(), id)).toHaveLength(before);
    rx.setBehaviour({ code: GrpcStatus.OK });
    const all = (): string[] => bodies(rx.logs(), id);
    await waitFor(() => new Set(all()).size >= N, 90_000, 250, 'every line after the outage');
    const got = all();
    const missing: number[] = [];
    const seen = new Set(got);
    for (let i = 1; i <= N; i++) if (!seen.has(String(i))) missing.push(i);
    expect(missing.slice(0, 10)).toEqual([]);
    // one kill: at most one batch delivered twice
    expect(got.length - seen.size).toBeLessThanOrEqual(BATCH);
    expect(
      await counter(agent, 'harbormaster_log_export_failures_total', 'retryable'),
    ).toBeGreaterThanOrEqual(1);
    expect(await counter(agent, 'harbormaster_log_drops_total', 'export_rejected')).toBe(0);
  });

  it('4b. gRPC: INVALID_ARGUMENT drops and counts the batch', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.INVALID_ARGUMENT, details: 'bad request' },
    });
    closers.push(() => rx.close());
    const agent = await agentWith({
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc',
    });
    agents.push(agent);
    const id = await numbered('hm-logs-grpc-bad', 'seq 1 5');
    containers.push(id);
    await waitFor(
      async () => (await counter(agent, 'harbormaster_log_drops_total', 'export_rejected')) >= 5,
      30_000,
      200,
      'the rejected lines counted',
    );
    // dropped, not retried: no more calls than lines
    expect(rx.calls().length).toBeLessThanOrEqual(5);
    expect(rx.logs()).toEqual([]);
    expect(
      agent
        .logs()
        .some(
          (r) =>
            typeof r.msg === 'string' &&
            r.msg.startsWith('The log receiver rejected a batch permanently'),
        ),
    ).toBe(true);
  });

  it('4c. gRPC: a partial success is counted with its message', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: {
        code: GrpcStatus.OK,
        partialSuccess: { rejected: 2, message: 'two records were too old' },
      },
    });
    closers.push(() => rx.close());
    const agent = await agentWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    agents.push(agent);
    const id = await numbered('hm-logs-grpc-partial', 'seq 1 5');
    containers.push(id);
    await waitFor(() => bodies(rx.logs(), id).length >= 5, 30_000, 200, 'the lines');
    await waitFor(
      async () => (await counter(agent, 'harbormaster_log_drops_total', 'export_rejected')) >= 2,
      30_000,
      200,
      'the partial success counted',
    );
    const warning = agent
      .logs()
      .find((r) => typeof r.msg === 'string' && r.msg.includes('OTLP partial success'));
    expect(warning).toMatchObject({ message: 'two records were too old' });
  });
});
