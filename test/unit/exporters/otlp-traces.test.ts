import { status as GrpcStatus } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { ResourceIdentity } from '../../../src/docker/identity.js';
import { createRunSpanExporter, type ContainerRun } from '../../../src/exporters/otlp-traces.js';
import { startOtlpGrpcReceiver, startOtlpHttpsReceiver } from '../../support/otlp-grpc-receiver.js';
import { allSpans, attrs } from '../../support/otlp-receiver.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { makeTestPki, type TestPki } from '../../support/tls.js';

const ID = 'a'.repeat(64);
const info = makeContainerInfo({
  id: ID,
  name: 'shop-web-1',
  image: 'registry.example.com:5000/shop/web:2.1',
  labels: { 'com.docker.compose.service': 'web', 'com.docker.compose.project': 'shop' },
});
let seq = 0;
function run(over: Partial<ContainerRun> = {}): ContainerRun {
  const start = 1_700_000_000_000 + seq++ * 10_000;
  return {
    containerId: ID,
    containerName: 'shop-web-1',
    image: info.image,
    startMs: start,
    endMs: start + 1000,
    exitCode: 137,
    signal: 'SIGKILL',
    oomKilled: true,
    attempt: 2,
    events: [],
    ...over,
  };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function exporter(env: Record<string, string>) {
  const { config } = loadConfig({
    env: { HARBORMASTER_LIFECYCLE_TRACES_BATCH_DELAY_SECONDS: '0.05', ...env },
  });
  const registry = new Registry();
  const identity = new ResourceIdentity({
    daemonInfo: () => ({ Name: 'docker-host-7', ID: 'DAEMON-ID', OSType: 'linux' }),
    resourceAttributes: config.otlp.resource_attributes,
    version: '1.0.0',
  });
  const ex = createRunSpanExporter({
    config,
    identity,
    containerInfo: (id) => (id === ID ? info : undefined),
    logger: pino({ level: 'silent' }),
    registry,
  });
  if (!ex) throw new Error('no exporter');
  closers.push(() => ex.shutdown());
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const m = await registry.getSingleMetric(name)?.get();
    return (m?.values ?? [])
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((a, v) => a + v.value, 0);
  };
  return { ex, metric };
}

async function until<T>(
  fn: () => T | false | undefined | Promise<T | false | undefined>,
  ms = 20_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('run spans over OTLP/gRPC', () => {
  it("carry the container's identity as resource and our attributes in our namespaces", async () => {
    const rx = await startOtlpGrpcReceiver();
    closers.push(() => rx.close());
    const { ex } = exporter({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=a%2Cb',
    });
    ex.export(run());
    const [span] = await until(() => allSpans(rx.traces()).length > 0 && allSpans(rx.traces()));
    expect(span?.resource).toMatchObject({
      'host.name': 'docker-host-7',
      'host.id': 'DAEMON-ID',
      'service.name': 'web',
      'service.namespace': 'shop',
      'service.instance.id': ID,
      'deployment.environment': 'prod',
      team: 'a,b',
      'container.image.name': 'registry.example.com:5000/shop/web',
      'container.image.tags': ['2.1'],
    });
    const a = attrs(span?.attributes);
    expect(a).toMatchObject({
      'docker.container.oom_killed': true,
      'harbormaster.run.exit_signal': 'SIGKILL',
      'harbormaster.run.attempt': 2,
      'process.exit.code': 137,
    });
    expect(Object.keys(a).filter((k) => /oom_killed|exit.signal|run.attempt/.test(k))).toEqual([
      'docker.container.oom_killed',
      'harbormaster.run.exit_signal',
      'harbormaster.run.attempt',
    ]);
    expect(rx.calls()[0]?.metadata.authorization).toBe('Bearer abc');
  });

  it('delivers spans across a period in which the receiver answers UNAVAILABLE', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.UNAVAILABLE, details: 'maintenance' },
    });
    closers.push(() => rx.close());
    const { ex, metric } = exporter({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
    });
    ex.export(run());
    ex.export(run());
    await until(() => rx.calls().length >= 2);
    expect(rx.traces()).toEqual([]);
    rx.setBehaviour({ code: 0 });
    const spans = await until(() => allSpans(rx.traces()).length >= 2 && allSpans(rx.traces()));
    expect(spans).toHaveLength(2);
    expect(
      await metric('harbormaster_otlp_export_failures_total', { reason: 'grpc_unavailable' }),
    ).toBeGreaterThanOrEqual(2);
    await until(async () => (await metric('harbormaster_otlp_spans_exported_total')) === 2);
    expect(await metric('harbormaster_otlp_spans_dropped_total')).toBe(0);
  });

  it('drops and counts spans the receiver refuses with INVALID_ARGUMENT, without retrying', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.INVALID_ARGUMENT, details: 'bad span' },
    });
    closers.push(() => rx.close());
    const { ex, metric } = exporter({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    ex.export(run());
    await until(
      async () =>
        (await metric('harbormaster_otlp_spans_dropped_total', { reason: 'failure' })) === 1,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(rx.calls()).toHaveLength(1);
    expect(
      await metric('harbormaster_otlp_export_failures_total', { reason: 'grpc_invalid_argument' }),
    ).toBe(1);
  });
});

describe('run spans over TLS with a private CA', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });

  it('OTLP/HTTP: delivered with OTEL_EXPORTER_OTLP_CERTIFICATE', async () => {
    const rx = await startOtlpHttpsReceiver({
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
    });
    closers.push(() => rx.close());
    const { ex } = exporter({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
    });
    ex.export(run());
    await until(() => allSpans(rx.traces()).length === 1);
  });

  it('OTLP/HTTP mTLS: delivered with CLIENT_KEY/CLIENT_CERTIFICATE, refused and counted without', async () => {
    const tls = {
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
      ca: pki.read('ca'),
      requireClientCert: true,
    };
    const rx = await startOtlpHttpsReceiver(tls);
    closers.push(() => rx.close());
    const { ex } = exporter({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: pki.files.clientKey,
      OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: pki.files.clientCert,
    });
    ex.export(run());
    await until(() => allSpans(rx.traces()).length === 1);
    const bare = exporter({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      HARBORMASTER_LIFECYCLE_TRACES_RETRY_MAX_SECONDS: '0',
    });
    bare.ex.export(run());
    await until(async () => (await bare.metric('harbormaster_otlp_export_failures_total')) >= 1);
    await until(() => rx.tlsErrors().length >= 1);
    expect(allSpans(rx.traces())).toHaveLength(1);
  });

  it('OTLP/gRPC mTLS: delivered with the client pair, refused without', async () => {
    const rx = await startOtlpGrpcReceiver({
      tls: {
        key: pki.read('serverKey'),
        cert: pki.read('serverCert'),
        ca: pki.read('ca'),
        requireClientCert: true,
      },
    });
    closers.push(() => rx.close());
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
    };
    const { ex } = exporter({
      ...env,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.files.clientKey,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.files.clientCert,
    });
    ex.export(run());
    await until(() => allSpans(rx.traces()).length === 1);
    const bare = exporter({ ...env, HARBORMASTER_LIFECYCLE_TRACES_RETRY_MAX_SECONDS: '0' });
    bare.ex.export(run());
    await until(async () => (await bare.metric('harbormaster_otlp_spans_dropped_total')) === 1);
    expect(allSpans(rx.traces())).toHaveLength(1);
  });
});

describe('switches', () => {
  it('exports nothing with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true', () => {
    for (const off of [{ OTEL_TRACES_EXPORTER: 'none' }, { OTEL_SDK_DISABLED: 'true' }]) {
      const { config } = loadConfig({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', ...off },
      });
      const ex = createRunSpanExporter({
        config,
        identity: new ResourceIdentity({ daemonInfo: () => undefined }),
        logger: pino({ level: 'silent' }),
      });
      expect(ex).toBeUndefined();
    }
  });
});
