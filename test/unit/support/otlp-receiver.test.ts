import { afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  allSpans,
  attrs,
  startOtlpReceiver,
  STATUS_CODE_ERROR,
  type OtlpReceiver,
} from '../../support/otlp-receiver.js';

const TRACE_ID = '0123456789abcdef0123456789abcdef';
const SPAN_ID = '0123456789abcdef';

function span(): ReadableSpan {
  return {
    name: 'container run',
    kind: SpanKind.INTERNAL,
    spanContext: () => ({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED }),
    startTime: [1_700_000_000, 0],
    endTime: [1_700_000_005, 500],
    duration: [5, 500],
    status: { code: SpanStatusCode.ERROR, message: 'exit 1' },
    attributes: { 'container.id': 'abc', 'process.exit.code': 1 },
    links: [],
    events: [{ name: 'oom', time: [1_700_000_004, 0], attributes: { x: 'y' } }],
    ended: true,
    resource: resourceFromAttributes({ 'host.name': 'h1' }),
    instrumentationScope: { name: 'harbormaster' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function send(exporter: OTLPTraceExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

let rx: OtlpReceiver | undefined;
afterEach(async () => {
  await rx?.close();
  rx = undefined;
});

describe('OTLP test receiver', () => {
  it.each(['gzip', 'none'] as const)(
    'decodes protobuf traces sent by the real exporter (%s)',
    async (compression) => {
      rx = await startOtlpReceiver();
      const exporter = new OTLPTraceExporter({
        url: `${rx.url}/v1/traces`,
        compression: compression as never,
      });
      const res = await send(exporter, [span()]);
      expect(res.code).toBe(ExportResultCode.SUCCESS);
      await exporter.shutdown();
      expect(rx.requestLog()[0]?.contentType).toContain('protobuf');
      const [s] = allSpans(rx.traces());
      expect(s?.traceId).toBe(TRACE_ID);
      expect(s?.spanId).toBe(SPAN_ID);
      expect(s?.startTimeUnixNano).toBe('1700000000000000000');
      expect(s?.endTimeUnixNano).toBe('1700000005000000500');
      expect(s?.status?.code).toBe(STATUS_CODE_ERROR);
      expect(attrs(s?.attributes)).toEqual({ 'container.id': 'abc', 'process.exit.code': 1 });
      expect(s?.events.map((e) => e.name)).toEqual(['oom']);
      expect(s?.resource['host.name']).toBe('h1');
    },
  );

  it('answers the configured status and does not keep refused requests', async () => {
    rx = await startOtlpReceiver();
    rx.setStatus(503, { retryAfter: 1 });
    const exporter = new OTLPTraceExporter({ url: `${rx.url}/v1/traces`, timeoutMillis: 3000 });
    const res = await send(exporter, [span()]);
    await exporter.shutdown();
    expect(res.code).toBe(ExportResultCode.FAILED);
    expect(rx.requests()).toBeGreaterThanOrEqual(1);
    expect(rx.requestLog()[0]?.status).toBe(503);
    expect(rx.traces()).toEqual([]);
  });

  it('decodes OTLP/JSON logs, gzipped', async () => {
    rx = await startOtlpReceiver();
    const body = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'host.name', value: { stringValue: 'h1' } }] },
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: '1700000000000000001',
                  body: { stringValue: 'hello' },
                  traceId: TRACE_ID,
                  attributes: [{ key: 'log.iostream', value: { stringValue: 'stdout' } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const r = await fetch(`${rx.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(body)),
    });
    expect(r.status).toBe(200);
    const rec = rx.logs()[0]?.resourceLogs[0]?.scopeLogs[0]?.logRecords[0];
    expect(rec?.body?.stringValue).toBe('hello');
    expect(rec?.timeUnixNano).toBe('1700000000000000001');
    expect(rec?.traceId).toBe(TRACE_ID);
    expect(attrs(rec?.attributes)).toEqual({ 'log.iostream': 'stdout' });
  });
});
