// Issue 16 acceptance 9 (unit level): run spans survive a receiver outage. The real OTLP/HTTP
// protobuf exporter sends to the real test receiver; the receiver goes away and comes back on
// the same port; the spool lives on the real filesystem.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { runToSpan } from '../../../src/exporters/otlp-traces.js';
import { SpanSpool } from '../../../src/exporters/span-spool.js';
import {
  allSpans,
  attrs,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../../support/otlp-receiver.js';
import { tempDir } from '../../support/tmp.js';
import { refusedPort } from '../../integration/harness/exec.js';

const resource = resourceFromAttributes({ 'service.name': 'harbormaster', 'host.name': 'h1' });
const logger = pino({ level: 'silent' });

function span(i: number): ReadableSpan {
  return runToSpan(
    {
      containerId: `c${String(i).padStart(3, '0')}`,
      containerName: `run-${i}`,
      image: 'busybox:latest',
      startMs: 1_700_000_000_000 + i * 1000,
      endMs: 1_700_000_000_500 + i * 1000,
      exitCode: i % 2,
      oomKilled: false,
      events: [{ name: 'die', timeMs: 1_700_000_000_500 + i * 1000 }],
    },
    resource,
  );
}

function exportVia(spool: SpanSpool, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((r) => spool.export(spans, r));
}

async function until(fn: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const names = (rx: OtlpReceiver): string[] =>
  allSpans(rx.traces())
    .map((s) => String(attrs(s.attributes)['container.name']))
    .sort();

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function setup(port: number, dir: string, maxBytes = 1 << 20) {
  const registry = new Registry();
  const inner = new OTLPTraceExporter({
    url: `http://127.0.0.1:${port}/v1/traces`,
    timeoutMillis: 2000,
  });
  const spool = new SpanSpool(inner, {
    dir,
    maxBytes,
    logger,
    registry,
    minRetryMs: 50,
    maxRetryMs: 200,
  });
  cleanup.push(() => spool.shutdown());
  return { spool, registry };
}

describe('SpanSpool', () => {
  it('keeps spans through an outage and delivers every one afterwards', async () => {
    // the receiver restarts on its port (the spool keeps its endpoint): the one place this file
    // binds a port it closed
    let rx = await startOtlpReceiver();
    const port = rx.port;
    const dir = join(tempDir('hm-spool'), 'spans');
    const { spool, registry } = setup(port, dir);

    expect((await exportVia(spool, [span(0)])).code).toBe(ExportResultCode.SUCCESS);
    expect(names(rx)).toEqual(['run-0']);
    await rx.close();

    // Receiver gone: each batch is kept on disk and reported as handled.
    for (let i = 1; i <= 20; i++)
      expect((await exportVia(spool, [span(i)])).code).toBe(ExportResultCode.SUCCESS);
    expect(spool.spooled).toBe(20);
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    expect(await registry.getSingleMetricAsString('harbormaster_otlp_spans_spooled')).toMatch(
      /harbormaster_otlp_spans_spooled 20/,
    );

    rx = await startOtlpReceiver({ port });
    cleanup.push(() => rx.close());
    await until(() => spool.spooled === 0 && names(rx).length === 20);
    expect(names(rx)).toEqual(Array.from({ length: 20 }, (_, i) => `run-${i + 1}`).sort());
    expect(readdirSync(dir)).toEqual([]);
    // A span keeps its identity and content through the spool.
    const s = allSpans(rx.traces()).find((x) => attrs(x.attributes)['container.name'] === 'run-3')!;
    expect(s.spanId).toBe(span(3).spanContext().spanId);
    expect(s.events?.map((e) => e.name)).toEqual(['die']);
    expect(s.resource['host.name']).toBe('h1');
  });

  it('spans spooled by one agent process are sent by the next', async () => {
    const dir = join(tempDir('hm-spool'), 'spans');
    const first = setup(await refusedPort(), dir);
    for (let i = 0; i < 5; i++) await exportVia(first.spool, [span(i), span(i + 100)]);
    await first.spool.shutdown();
    // A crash mid-write leaves a .tmp file: ignored and removed.
    writeFileSync(join(dir, 'spans-0000000000000001.json.tmp'), '[{"trunc');

    const rx2 = await startOtlpReceiver();
    cleanup.push(() => rx2.close());
    const second = setup(rx2.port, dir);
    expect(second.spool.spooled).toBe(10);
    // the receiver has the spans before the spool has the response that lets it delete them
    await until(() => names(rx2).length === 10 && second.spool.spooled === 0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('counts what it cannot keep: a full spool and a corrupt file', async () => {
    const dir = join(tempDir('hm-spool'), 'spans');
    const { spool, registry } = setup(await refusedPort(), dir, 3000);
    const results: ExportResultCode[] = [];
    for (let i = 0; i < 10; i++) results.push((await exportVia(spool, [span(i)])).code);
    const kept = spool.spooled;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(10);
    expect(results.filter((c) => c === ExportResultCode.FAILED)).toHaveLength(10 - kept);
    const text = await registry.getSingleMetricAsString('harbormaster_otlp_spans_dropped_total');
    expect(text).toContain(
      `harbormaster_otlp_spans_dropped_total{reason="spool_full"} ${10 - kept}`,
    );

    await spool.shutdown();
    writeFileSync(join(dir, 'spans-0000000000000000.json'), 'not json');
    const rx2 = await startOtlpReceiver();
    cleanup.push(() => rx2.close());
    const again = setup(rx2.port, dir, 1 << 20);
    await until(() => again.spool.spooled === 0);
    expect(names(rx2)).toHaveLength(kept);
    const t2 = await again.registry.getSingleMetricAsString(
      'harbormaster_otlp_spans_dropped_total',
    );
    expect(t2).toContain('harbormaster_otlp_spans_dropped_total{reason="spool_corrupt"} 1');
    expect(readdirSync(dir)).toEqual([]);
  });
});
