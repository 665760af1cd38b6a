// buildLogExporter (src/agent.ts): the OTEL_* variables a user sets decide where logs go and how,
// checked against real receivers on 127.0.0.1 (gRPC, HTTPS with a private CA).
import { status as GrpcStatus } from '@grpc/grpc-js';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildLogExporter } from '../../../src/agent.js';
import { loadConfig } from '../../../src/config/load.js';
import { newRecord } from '../../../src/logs/record.js';
import { createLogger, type Logger } from '../../../src/util/logger.js';
import type { LogExporter, LogRecord } from '../../../src/logs/types.js';
import { startOtlpGrpcReceiver, startOtlpHttpsReceiver } from '../../support/otlp-grpc-receiver.js';
import { allLogRecords, anyValue } from '../../support/otlp-receiver.js';
import { makeTestPki, type TestPki } from '../../support/tls.js';

function config(env: Record<string, string>) {
  return loadConfig({ env }).config;
}

function records(lines: string[]): LogRecord[] {
  const resource = { key: 'c1', attributes: { 'service.name': 'web' } };
  return lines.map((l) => newRecord(resource, 'stdout', Buffer.from(l), 1, 0, 1000, undefined));
}

function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: createLogger('info', stream),
    lines: () =>
      out
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const open: { close?(): unknown; shutdown?(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await (o.shutdown?.() ?? o.close?.());
});

describe('buildLogExporter', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('is off with OTEL_LOGS_EXPORTER=none or OTEL_SDK_DISABLED, and says why', () => {
    const c = capture();
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    expect(buildLogExporter(config({ ...base, OTEL_LOGS_EXPORTER: 'none' }), c.logger)).toBe(
      undefined,
    );
    expect(buildLogExporter(config({ ...base, OTEL_SDK_DISABLED: 'true' }), c.logger)).toBe(
      undefined,
    );
    expect(c.lines().map((l) => l.msg)).toEqual([
      expect.stringContaining('OTEL_LOGS_EXPORTER=none'),
      expect.stringContaining('OTEL_SDK_DISABLED=true'),
    ]);
    // the ndjson exporter is not an OTLP exporter
    expect(
      buildLogExporter(
        config({ ...base, OTEL_LOGS_EXPORTER: 'none', HARBORMASTER_LOGS_EXPORTER: 'ndjson' }),
      )?.name,
    ).toBe('ndjson');
  });

  it('speaks gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc; a partial success comes back as rejected', async () => {
    const rx = await startOtlpGrpcReceiver({
      behaviour: { code: GrpcStatus.OK, partialSuccess: { rejected: 1, message: 'too old' } },
    });
    open.push(rx);
    const exp = buildLogExporter(
      config({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    ) as LogExporter;
    open.push(exp);
    await expect(exp.export(records(['a', 'b']), new AbortController().signal)).resolves.toEqual({
      status: 'success',
      rejected: 1,
      message: 'too old',
    });
    expect(allLogRecords(rx.logs()).map((r) => anyValue(r.body))).toEqual(['a', 'b']);
    rx.setBehaviour({ code: GrpcStatus.INVALID_ARGUMENT, details: 'bad' });
    await expect(exp.export(records(['c']), new AbortController().signal)).resolves.toMatchObject({
      status: 'failure',
    });
  });

  it('trusts OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE for https and warns once about a certificate on http', async () => {
    const rx = await startOtlpHttpsReceiver({
      key: pki.read('serverKey'),
      cert: pki.read('serverCert'),
    });
    open.push(rx);
    const without = buildLogExporter(
      config({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }),
    ) as LogExporter;
    open.push(without);
    await expect(
      without.export(records(['x']), new AbortController().signal),
    ).resolves.toMatchObject({ status: 'retryable' });
    const withCa = buildLogExporter(
      config({
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: pki.files.ca,
      }),
    ) as LogExporter;
    open.push(withCa);
    await expect(withCa.export(records(['y']), new AbortController().signal)).resolves.toEqual({
      status: 'success',
    });
    expect(allLogRecords(rx.logs()).map((r) => anyValue(r.body))).toEqual(['y']);

    const c = capture();
    const plain = buildLogExporter(
      config({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_CERTIFICATE: pki.files.ca,
      }),
      c.logger,
    );
    open.push(plain as LogExporter);
    const warns = c.lines().filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toContain('OTEL_EXPORTER_OTLP_CERTIFICATE');
  });
});
