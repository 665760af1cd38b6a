// Exec audit records go through the log pipeline (LogsComponent.intake()): the OTEL_* settings of
// container logs apply to them (here OTLP/gRPC over TLS with a private CA, to a real gRPC
// receiver on 127.0.0.1), OTEL_LOGS_EXPORTER=none switches them off with the logs, and a full log
// queue makes them wait (bounded), not vanish silently.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, buildLogExporter } from '../../../src/agent.js';
import { LogsAuditSink, MAX_WAITING } from '../../../src/collectors/lifecycle/audit-logs.js';
import { ExecAuditor, type ExecAuditRecord } from '../../../src/collectors/lifecycle/exec-audit.js';
import { loadConfig } from '../../../src/config/load.js';
import { ResourceIdentity } from '../../../src/docker/identity.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { LogsComponent, type LogIntake } from '../../../src/logs/component.js';
import { LogTelemetry } from '../../../src/logs/telemetry.js';
import type { LogExporter, LogRecord } from '../../../src/logs/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { captureLogger } from '../../support/log-capture.js';
import { startOtlpGrpcReceiver, type OtlpGrpcReceiver } from '../../support/otlp-grpc-receiver.js';
import { allLogRecords, anyValue, attrs } from '../../support/otlp-receiver.js';
import { makeTestPki, type TestPki } from '../../support/tls.js';
import { silentLogger } from './helpers.js';
import { until } from './lifecycle-harness.js';

const ID = 'd'.repeat(64);
const T0 = 1_750_000_000_000;
const db = makeContainerInfo({
  id: ID,
  name: 'db',
  image: 'postgres:16',
  labels: { 'com.docker.compose.service': 'db', 'com.docker.compose.project': 'shop' },
});

function execEvents(execID: string, exitCode: string): DockerEvent[] {
  const ev = (action: string, ms: number, a: Record<string, string> = {}): DockerEvent => ({
    Type: 'container',
    Action: action,
    Actor: { ID, Attributes: { name: 'db', execID, ...a } },
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  });
  return [
    ev('exec_create: sh -c exit 3', T0),
    ev('exec_start: sh -c exit 3', T0 + 10),
    ev('exec_die', T0 + 500, { exitCode }),
  ];
}

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('exec audit through the log pipeline', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('are delivered like container logs: OTLP/gRPC with a private CA, the container identity, an event without log.iostream', async () => {
    const rx: OtlpGrpcReceiver = await startOtlpGrpcReceiver({
      tls: { key: pki.read('serverKey'), cert: pki.read('serverCert') },
    });
    closers.push(() => rx.close());
    const config = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod',
      },
    }).config;
    expect(rx.url).toMatch(/^https:/);
    const exporter = buildLogExporter(config) as LogExporter;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-audit-'));
    dirs.push(dir);
    const identity = new ResourceIdentity({
      hostName: 'host-1',
      daemonInfo: () => undefined,
      resourceAttributes: config.otlp.resource_attributes,
    });
    const registry = new Registry();
    const logs = new LogsComponent({
      logs: { ...config.logs, batch_delay_seconds: 0.02 },
      stateDir: dir,
      dockerRoot: '/var/lib/docker',
      shutdownTimeoutSeconds: 5,
      identity,
      logger: silentLogger,
      inventory: {
        list: () => [],
        get: () => undefined,
        subscribe: () => () => {},
        ready: () => true,
        engine: () => undefined,
      },
      exporter,
      telemetry: new LogTelemetry(registry, silentLogger),
    });
    await logs.start();
    closers.push(() => logs.stop());
    const sink = new LogsAuditSink({
      intake: logs.intake(),
      identity,
      labelAllowlist: [],
      logger: silentLogger,
      registry,
    });
    const auditor = new ExecAuditor({
      inspectExec: () =>
        Promise.resolve({ ProcessConfig: { user: 'nobody', privileged: false, tty: false } }),
      container: (id) => (id === ID ? db : undefined),
      sink,
      redact: (s) => s,
      logger: silentLogger,
      errors: { inc: () => {} } as never,
    });
    for (const e of execEvents('x1', '3')) auditor.onDockerEvent(e);

    const got = await until(() => {
      const l = allLogRecords(rx.logs());
      return l.length >= 2 && l;
    }, 'two audit records at the gRPC receiver');
    expect(got).toHaveLength(2);
    const end = got.find((l) => attrs(l.attributes)['container.exec.phase'] === 'exit')!;
    expect(end.eventName).toBe('container.exec');
    expect(anyValue(end.body)).toBe('docker exec in db ended with exit code 3: sh -c exit 3');
    expect(attrs(end.attributes)).toMatchObject({
      'process.command_line': 'sh -c exit 3',
      'process.exit.code': 3,
      'process.user.name': 'nobody',
    });
    expect(attrs(end.attributes)['log.iostream']).toBeUndefined();
    expect(end.severityNumber).toBe(9);
    expect(end.resource).toMatchObject({
      'container.id': ID,
      'container.name': 'db',
      'service.name': 'db',
      'service.namespace': 'shop',
      'host.name': 'host-1',
      'deployment.environment': 'prod',
    });
    // acknowledged by the pipeline once delivered
    let text = '';
    await until(() => {
      void registry.metrics().then((t) => (text = t));
      return text.includes('harbormaster_exec_audit_records_total{outcome="exported"} 2');
    }, 'exported 2');
  });

  it('are off with the logs when OTEL_LOGS_EXPORTER=none, and the agent says why', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-audit-'));
    dirs.push(dir);
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      HARBORMASTER_STATE_DIR: dir,
      HARBORMASTER_LISTEN: '127.0.0.1:0',
    };
    const on = captureLogger();
    const withLogs = new Agent(loadConfig({ env }).config, on.logger);
    const off = captureLogger();
    const noLogs = new Agent(
      loadConfig({ env: { ...env, OTEL_LOGS_EXPORTER: 'none' } }).config,
      off.logger,
    );
    const msgs = (c: ReturnType<typeof captureLogger>) => c.lines().map((l) => String(l.msg));
    expect(msgs(on)).toContainEqual(expect.stringContaining('audited as log records'));
    expect(msgs(off)).toContainEqual(expect.stringContaining('docker exec is not audited'));
    expect(msgs(off)).not.toContainEqual(expect.stringContaining('audited as log records'));
    // the audit counter exists only where records can go
    const families = (a: Agent) => a.ctx.metrics.registry.getMetricsAsArray().map((m) => m.name);
    expect(families(withLogs)).toContain('harbormaster_exec_audit_records_total');
    expect(families(noLogs)).not.toContain('harbormaster_exec_audit_records_total');
  });

  it('wait while the log queue is full, go in order when it has room, and beyond the bound are dropped and counted', async () => {
    let room: (() => void) | undefined;
    let full = true;
    const queued: LogRecord[] = [];
    const intake: LogIntake = {
      waitForSpace: () => (full ? new Promise<void>((r) => (room = r)) : undefined),
      submit: (r) => queued.push(r),
    };
    const registry = new Registry();
    const sink = new LogsAuditSink({
      intake,
      identity: new ResourceIdentity({ hostName: 'h', daemonInfo: () => undefined }),
      labelAllowlist: [],
      logger: silentLogger,
      registry,
    });
    const rec = (i: number): ExecAuditRecord => ({
      phase: 'start',
      timeMs: T0 + i,
      containerId: ID,
      container: db,
      execId: `e${i}`,
      command: `cmd ${i}`,
      user: '',
      privileged: false,
      tty: false,
    });
    for (let i = 0; i < MAX_WAITING + 5; i++) sink.submit(rec(i));
    expect(queued).toHaveLength(0);
    expect(await registry.metrics()).toContain(
      'harbormaster_exec_audit_records_total{outcome="dropped_queue_full"} 5',
    );
    full = false;
    room?.();
    await until(() => queued.length === MAX_WAITING, 'the waiting records in the queue');
    expect(queued.map((r) => r.body)).toEqual(
      Array.from(
        { length: MAX_WAITING },
        (_, i) => `docker exec in db as the container user: cmd ${i}`,
      ),
    );
    // later records go straight in
    sink.submit(rec(9999));
    expect(queued).toHaveLength(MAX_WAITING + 1);
    await sink.shutdown();
  });
});
