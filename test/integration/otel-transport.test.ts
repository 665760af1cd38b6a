// Issue 13, acceptance 3 and 4 (spans): the agent delivers run spans to a receiver whose
// certificate comes from a private CA (OTEL_EXPORTER_OTLP_CERTIFICATE), with mTLS when the
// receiver requires a client certificate (and is refused, counted and logged once without);
// over OTLP/gRPC, spans of runs that end while the receiver answers UNAVAILABLE for 20 s arrive
// once it is back. Real private dockerd, the built agent, real TLS (openssl-made PKI) and a real
// @grpc/grpc-js receiver on 127.0.0.1.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  runContainer,
  sleep,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import { startOtlpGrpcReceiver, startOtlpHttpsReceiver } from '../support/otlp-grpc-receiver.js';
import { allSpans } from '../support/otlp-receiver.js';
import { makeTestPki, type TestPki } from '../support/tls.js';

async function agentWith(env: Record<string, string>): Promise<AgentProcess> {
  const agent = await startAgent({
    dockerHost: getDocker().host,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '',
      HARBORMASTER_LOGS_ENABLED: 'false',
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

async function oneRun(prefix: string, code = 0): Promise<string> {
  const name = uniqueName(prefix);
  await runContainer(['--name', name, TEST_IMAGE, 'sh', '-c', `exit ${code}`], {
    allowFailure: true,
  });
  return name;
}

describeDocker('OTLP transport for spans: TLS, mTLS, gRPC (issue 13)', () => {
  let pki: TestPki;
  const agents: AgentProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    for (const c of closers.splice(0)) await c();
  });
  afterAll(async () => {
    for (const a of agents.splice(0)) await a.stop();
  });

  it('3a. delivers spans to a private-CA receiver with OTEL_EXPORTER_OTLP_CERTIFICATE', async () => {
    const rx = await startOtlpHttpsReceiver({
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
    });
    closers.push(() => rx.close());
    const agent = await agentWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
    });
    agents.push(agent);
    const name = await oneRun('hm-tls');
    await waitFor(
      () => allSpans(rx.traces()).some((s) => s.resource['container.name'] === name),
      30_000,
      200,
      'the span over TLS',
    );
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
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.files.clientKey,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.files.clientCert,
    });
    agents.push(good);
    const first = await oneRun('hm-mtls');
    await waitFor(
      () => allSpans(rx.traces()).some((s) => s.resource['container.name'] === first),
      30_000,
      200,
      'the span over mTLS',
    );
    await good.stop();
    agents.splice(agents.indexOf(good), 1);

    const bare = await agentWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      HARBORMASTER_LIFECYCLE_TRACES_RETRY_MAX_SECONDS: '0',
    });
    agents.push(bare);
    const second = await oneRun('hm-nocert');
    const third = await oneRun('hm-nocert');
    await waitFor(
      async () =>
        (await counter(bare, 'harbormaster_otlp_spans_dropped_total', 'reason="failure"')) >= 2,
      30_000,
      250,
      'both spans refused and counted',
    );
    // both runs may end up in one export request: at least one refused request
    expect(
      await counter(bare, 'harbormaster_otlp_export_failures_total', 'signal="traces"'),
    ).toBeGreaterThanOrEqual(1);
    expect(rx.tlsErrors().length).toBeGreaterThanOrEqual(1);
    const names = new Set(allSpans(rx.traces()).map((s) => s.resource['container.name']));
    expect(names.has(second) || names.has(third)).toBe(false);
    const warnings = bare
      .logs()
      .filter(
        (r) => typeof r.msg === 'string' && r.msg.startsWith('Exporting container run spans'),
      );
    expect(warnings).toHaveLength(1);
  });

  it('4. gRPC: spans of runs that end while the receiver answers UNAVAILABLE for 20 s all arrive', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.UNAVAILABLE, details: 'collector restarting' },
    });
    closers.push(() => rx.close());
    const agent = await agentWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    agents.push(agent);
    const down = Date.now();
    const names: string[] = [];
    for (let i = 0; i < 5; i++) names.push(await oneRun('hm-grpc', i % 2));
    await waitFor(() => rx.calls().length >= 1, 20_000, 200, 'the first refused export');
    await sleep(Math.max(0, 20_000 - (Date.now() - down)));
    expect(rx.traces()).toEqual([]);
    rx.setBehaviour({ code: GrpcStatus.OK });
    const spans = await waitFor(
      () => {
        const got = allSpans(rx.traces()).filter((s) =>
          names.includes(String(s.resource['container.name'])),
        );
        return got.length >= names.length ? got : undefined;
      },
      90_000,
      250,
      'every span after the receiver came back',
    );
    expect(new Set(spans.map((s) => s.resource['container.name']))).toEqual(new Set(names));
    expect(
      await counter(agent, 'harbormaster_otlp_export_failures_total', 'reason="grpc_unavailable"'),
    ).toBeGreaterThanOrEqual(1);
    expect(await counter(agent, 'harbormaster_otlp_spans_dropped_total')).toBe(0);
  });

  it('4b. gRPC: INVALID_ARGUMENT drops and counts without retrying', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.INVALID_ARGUMENT, details: 'bad request' },
    });
    closers.push(() => rx.close());
    const agent = await agentWith({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
    });
    agents.push(agent);
    await oneRun('hm-grpc-bad');
    await waitFor(
      async () =>
        (await counter(agent, 'harbormaster_otlp_spans_dropped_total', 'reason="failure"')) === 1,
      30_000,
      250,
      'the refused span counted',
    );
    await sleep(2000);
    expect(rx.calls()).toHaveLength(1);
  });
});
