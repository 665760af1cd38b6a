// The status page's log shipping comes from the log pipeline itself: a real LogsComponent tailing
// a real json-file log, exporting over OTLP/HTTP to the test receiver (real protobuf), and its
// LogTelemetry read through telemetryLogSource into the status document. While the receiver
// refuses, the container shows the export error and nothing shipped; once it accepts, the lines
// shipped, the time of the last export and the cleared error.
import { ResourceIdentity } from '../../../src/docker/identity.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { logsSection } from '../../../src/config/sections/logs.js';
import { OtlpLogsExporter } from '../../../src/exporters/otlp-logs.js';
import { LogsComponent } from '../../../src/logs/component.js';
import { LogTelemetry } from '../../../src/logs/telemetry.js';
import { fromTelemetry, telemetryLogSource } from '../../../src/server/status/log-source.js';
import { buildStatus, type StatusContainer } from '../../../src/server/status/model.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { startOtlpReceiver } from '../../support/otlp-receiver.js';
import { staticStatusSources } from '../../support/status-sources.js';
import { FakeDockerLog } from '../logs/fake-docker.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('status page log shipping from the log pipeline', () => {
  it('shows per container the lines shipped, bytes behind and the export error until delivery', async () => {
    const receiver = await startOtlpReceiver({ behaviour: { status: 503 } });
    cleanup.push(() => receiver.close());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-status-logs-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const w = new FakeDockerLog(dir);
    for (let i = 0; i < 30; i++) w.write('stdout', `line ${i}`);
    const web = makeContainerInfo({ id: 'a'.repeat(64), name: 'web', logPath: w.file });
    const quiet = makeContainerInfo({ id: 'b'.repeat(64), name: 'quiet', logDriver: 'none' });
    const inventory = {
      list: () => [web],
      get: (id: string) => (id === web.id ? web : undefined),
      subscribe: () => () => {},
      ready: () => true,
      engine: () => undefined,
    };
    const logger = pino({ level: 'silent' });
    const telemetry = new LogTelemetry(new Registry(), logger);
    const comp = new LogsComponent({
      logs: {
        ...logsSection.parse({}),
        batch_delay_seconds: 0.02,
        poll_interval_seconds: 0.02,
        retry_initial_seconds: 0.02,
        retry_max_seconds: 0.05,
      },
      stateDir: path.join(dir, 'state'),
      dockerRoot: '/var/lib/docker',
      shutdownTimeoutSeconds: 3,
      identity: new ResourceIdentity({ hostName: 'h1', daemonInfo: () => undefined }),
      logger,
      inventory,
      exporter: new OtlpLogsExporter({
        url: `${receiver.url}/v1/logs`,
        protocol: 'http/protobuf',
        headers: {},
        compression: 'none',
        timeoutMs: 5000,
      }),
      telemetry,
    });
    await comp.start();
    cleanup.push(() => comp.stop());
    const { sources } = staticStatusSources([web, quiet]);
    sources.logs = telemetryLogSource(telemetry);
    const row = (name: string): StatusContainer => {
      const c = buildStatus(sources).containers.find((x) => x.name === name);
      if (!c) throw new Error(`no row ${name}`);
      return c;
    };

    await until(() => receiver.requests() >= 2, 'the receiver to refuse twice');
    await until(() => row('web').logs?.linesRead === 30, 'the lines to be read');
    expect(row('web').logs).toMatchObject({ linesShipped: 0, bytesBehind: 0 });
    expect(row('web').logs?.lastError).toMatch(/503/);
    let doc = buildStatus(sources);
    expect(doc.logs.lastSuccessAt).toBeNull();
    expect(doc.logs.lastError).toMatch(/503/);
    expect(doc.logs.exportFailures.retryable).toBeGreaterThanOrEqual(1);
    // a container without a log source has no log-shipping entry
    expect(row('quiet').logs).toBeNull();

    const before = Date.now();
    receiver.setStatus(200);
    await until(() => row('web').logs?.linesShipped === 30, 'the lines to be shipped');
    expect(row('web').logs?.lastError).toBeNull();
    doc = buildStatus(sources);
    expect(doc.logs.lastError).toBeNull();
    expect(doc.logs.exported).toBe(30);
    expect(doc.logs.lastSuccessAt).toBeGreaterThanOrEqual(before);

    // later lines keep counting on the same row
    for (let i = 0; i < 5; i++) w.write('stdout', `more ${i}`);
    await until(() => row('web').logs?.linesShipped === 35, 'the new lines to be shipped');
    expect(row('web').logs?.bytesBehind).toBe(0);
  });

  it('leaves zero counts out and keeps a read problem when there is no export error', () => {
    const snap = fromTelemetry({
      queue: { records: 2, bytes: 700, heldBytes: 0, inflightBytes: 0, maxBytes: 1 << 20 },
      drops: { rotated_away: 1, filter_drop: 0 },
      exported: 5,
      lastExportError: undefined,
      lastExportAt: undefined,
      exportFailures: { retryable: 0, permanent: 2 },
      containers: [
        {
          key: 'c1',
          name: 'web',
          kind: 'file',
          linesRead: 7,
          bytesRead: 70,
          linesShipped: 5,
          bytesBehind: 12,
          lastError: 'The log file was rotated away before it was read.',
          lastExportError: undefined,
        },
      ],
    });
    expect(snap).toEqual({
      containers: new Map([
        [
          'c1',
          {
            linesRead: 7,
            linesShipped: 5,
            bytesBehind: 12,
            lastError: 'The log file was rotated away before it was read.',
          },
        ],
      ]),
      queue: { records: 2, bytes: 700 },
      exported: 5,
      lastSuccessAt: null,
      lastError: null,
      exportFailures: { permanent: 2 },
      drops: { rotated_away: 1 },
    });
  });
});
