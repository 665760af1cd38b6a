// Run spans survive a receiver outage the way logs do: a SpanExporter decorator that, when an
// export fails, writes the batch to a bounded spool in the state dir and reports success to the
// SDK's BatchSpanProcessor (whose in-memory queue would otherwise drop everything after 2,048
// spans). While spans are spooled, new batches go straight to the spool and one probe per
// backoff interval replays the oldest file; after a success the spool drains file by file.
// Files survive an agent restart and are replayed after it. What cannot be kept (spool full,
// state dir not writable, unreadable file) is counted in
// harbormaster_otlp_spans_dropped_total{reason} and logged once per cause.
//
// Delivery is at least once: a batch whose request failed after the receiver took it may come
// again; span ids are stable (derived from the container id and run start), so receivers and
// queries can tell duplicates.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  Attributes,
  HrTime,
  Link,
  SpanContext,
  SpanKind,
  SpanStatus,
} from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';
import { Counter, Gauge, type Registry } from 'prom-client';
import { OnceLogger, type Logger } from '../util/logger.js';

export const SPAN_DROP_REASONS = ['spool_full', 'spool_write_failed', 'spool_corrupt'] as const;
export type SpanDropReason = (typeof SPAN_DROP_REASONS)[number];

export interface SpanSpoolOptions {
  /** Directory of the spool files (created when first needed), e.g. <state_dir>/spans. */
  dir: string;
  /** Most bytes the spool files may take; a batch that does not fit is dropped and counted. */
  maxBytes: number;
  logger: Logger;
  registry?: Registry;
  /** First retry delay while spans are spooled (doubles up to maxRetryMs, resets on success). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

/** The JSON form of one span in a spool file. */
interface StoredSpan {
  name: string;
  kind: SpanKind;
  ctx: SpanContext;
  parent?: SpanContext;
  start: HrTime;
  end: HrTime;
  duration: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  links: Link[];
  events: TimedEvent[];
  resource: Attributes;
  scope: { name: string; version?: string; schemaUrl?: string };
  dropped: [number, number, number];
}

const FILE_RE = /^spans-(\d{16})\.json$/;

export class SpanSpool implements SpanExporter {
  private readonly log: OnceLogger;
  private readonly dropped: Counter;
  /** Spool files, oldest first, with their sizes and span counts. */
  private files: { name: string; bytes: number; spans: number }[] = [];
  private bytes = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private replaying = false;
  private closed = false;
  /** Spool writes, one after the other (awaited by forceFlush/shutdown). */
  private writes: Promise<void> = Promise.resolve();
  /** The replay in flight, if any. */
  private replayP: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: SpanExporter,
    private readonly o: SpanSpoolOptions,
  ) {
    this.log = new OnceLogger(o.logger.child({ component: 'span-spool' }));
    this.retryMs = o.minRetryMs ?? 1000;
    const registers = o.registry ? [o.registry] : [];
    // The traces exporter (otlp-traces.ts) registers the same family for what it gives up on;
    // one family, reasons from both.
    const existing = o.registry?.getSingleMetric('harbormaster_otlp_spans_dropped_total');
    this.dropped =
      existing instanceof Counter
        ? existing
        : new Counter({
            name: 'harbormaster_otlp_spans_dropped_total',
            help: 'Container run spans given up on, by reason: refused for good (failure), unavailable past lifecycle.traces_retry_max_seconds without a spool (retries_exhausted), or neither delivered nor kept in the spool (spool_full, spool_write_failed, spool_corrupt).',
            labelNames: ['reason'],
            registers,
          });
    for (const r of SPAN_DROP_REASONS) this.dropped.inc({ reason: r }, 0);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client collect() binds its own this
    const self = this;
    new Gauge({
      name: 'harbormaster_otlp_spans_spooled',
      help: 'Container run spans waiting in the state-dir spool for the OTLP receiver.',
      registers,
      collect() {
        this.set(self.files.reduce((n, f) => n + f.spans, 0));
      },
    });
    new Gauge({
      name: 'harbormaster_otlp_span_spool_bytes',
      help: 'Bytes of the span spool files in the state dir.',
      registers,
      collect() {
        this.set(self.bytes);
      },
    });
    this.scan();
    if (this.files.length > 0) this.schedule(0);
  }

  /** Spans waiting in the spool. */
  get spooled(): number {
    return this.files.reduce((n, f) => n + f.spans, 0);
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.closed || this.files.length > 0) {
      // In an outage: keep the order of arrival, and let one probe at a time find the receiver.
      this.spoolThenDone(spans, undefined, done);
      return;
    }
    this.tryInner(spans, (res) => {
      if (res.code === ExportResultCode.SUCCESS) done(res);
      else this.spoolThenDone(spans, res, done);
    });
  }

  async forceFlush(): Promise<void> {
    await this.writes;
    await this.inner.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([this.writes, this.replayP]);
    await this.inner.shutdown();
  }

  private tryInner(spans: ReadableSpan[], cb: (r: ExportResult) => void): void {
    let called = false;
    const once = (r: ExportResult): void => {
      if (called) return;
      called = true;
      cb(r);
    };
    try {
      this.inner.export(spans, once);
    } catch (err) {
      once({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  private spoolThenDone(
    spans: ReadableSpan[],
    failure: ExportResult | undefined,
    done: (r: ExportResult) => void,
  ): void {
    this.writes = this.writes.then(async () => {
      let kept = false;
      try {
        kept = await this.write(spans);
      } catch (err) {
        this.drop('spool_write_failed', spans.length, {
          err,
          message: `Run spans could not be written to the spool ${this.o.dir}; they are dropped and counted.`,
        });
      }
      // Kept on disk: the SDK may consider them delivered. Not kept: report the failure.
      done(
        kept
          ? { code: ExportResultCode.SUCCESS }
          : (failure ?? {
              code: ExportResultCode.FAILED,
              error: new Error('span spool unavailable'),
            }),
      );
      if (kept) this.schedule(this.retryMs);
    });
  }

  private async write(spans: ReadableSpan[]): Promise<boolean> {
    if (spans.length === 0) return true;
    const body = JSON.stringify(spans.map(toStored));
    const size = Buffer.byteLength(body);
    if (this.bytes + size > this.o.maxBytes) {
      this.drop('spool_full', spans.length, {
        message: `The span spool ${this.o.dir} is full (${this.o.maxBytes} bytes, lifecycle.traces_spool_max_bytes); run spans are dropped and counted until the OTLP receiver takes the spooled ones.`,
      });
      return false;
    }
    const name = `spans-${String(Date.now() * 1000 + (this.seq++ % 1000)).padStart(16, '0')}.json`;
    const path = join(this.o.dir, name);
    try {
      mkdirSync(this.o.dir, { recursive: true });
      await writeFile(`${path}.tmp`, body);
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      this.drop('spool_write_failed', spans.length, {
        err,
        message: `Writing run spans to the spool ${path} failed (${(err as Error).message}); they are dropped and counted.`,
      });
      return false;
    }
    this.files.push({ name, bytes: size, spans: spans.length });
    this.files.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.bytes += size;
    this.log.warn(
      'spooling',
      { dir: this.o.dir },
      `The OTLP traces receiver is not reachable; run spans are kept in ${this.o.dir} and sent when it is back.`,
    );
    return true;
  }

  private drop(reason: SpanDropReason, n: number, o: { err?: unknown; message: string }): void {
    this.dropped.inc({ reason }, n);
    this.log.warn(`drop:${reason}`, { dir: this.o.dir, reason, spans: n, err: o.err }, o.message);
  }

  private schedule(ms: number): void {
    if (this.closed || this.timer || this.replaying) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.replayP = this.replay().catch((err: unknown) =>
        this.log.warn('replay', { err }, 'Replaying the span spool failed; it is retried.'),
      );
    }, ms);
    this.timer.unref();
  }

  /** Sends spool files oldest first until one fails or the spool is empty. */
  private async replay(): Promise<void> {
    if (this.closed || this.replaying) return;
    this.replaying = true;
    try {
      while (!this.closed && this.files.length > 0) {
        const f = this.files[0]!;
        const path = join(this.o.dir, f.name);
        let spans: ReadableSpan[];
        try {
          spans = (JSON.parse(readFileSync(path, 'utf8')) as StoredSpan[]).map(fromStored);
        } catch (err) {
          this.forget(f, path);
          // An unreadable file's span count is unknown: it counts as at least one span.
          this.drop('spool_corrupt', Math.max(1, f.spans), {
            err,
            message: `The span spool file ${path} cannot be read (${(err as Error).message}); it is removed and its spans counted as dropped.`,
          });
          continue;
        }
        const res = await new Promise<ExportResult>((r) => this.tryInner(spans, r));
        if (res.code !== ExportResultCode.SUCCESS) {
          this.retryMs = Math.min(this.retryMs * 2, this.o.maxRetryMs ?? 10_000);
          return;
        }
        this.forget(f, path);
        this.retryMs = this.o.minRetryMs ?? 1000;
      }
      if (this.files.length === 0) {
        this.log.reset('spooling');
        this.log.reset('drop:spool_full');
        this.o.logger.info(
          { dir: this.o.dir },
          'The span spool is empty again; run spans flow directly.',
        );
      }
    } finally {
      this.replaying = false;
      if (this.files.length > 0) this.schedule(this.retryMs);
    }
  }

  private forget(f: { name: string; bytes: number }, path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to send twice.
    }
    this.files = this.files.filter((x) => x !== f);
    this.bytes -= f.bytes;
  }

  /** Files left by an earlier run of the agent. */
  private scan(): void {
    let names: string[];
    try {
      names = readdirSync(this.o.dir);
    } catch {
      return; // No spool yet (or unreadable: writes will say so).
    }
    for (const name of names.sort()) {
      if (name.endsWith('.tmp')) {
        try {
          unlinkSync(join(this.o.dir, name));
        } catch {
          // Leftover of a crash mid-write; harmless.
        }
        continue;
      }
      if (!FILE_RE.test(name)) continue;
      try {
        const bytes = statSync(join(this.o.dir, name)).size;
        const spans = countSpans(join(this.o.dir, name));
        this.files.push({ name, bytes, spans });
        this.bytes += bytes;
      } catch {
        // Vanished or unreadable: replay will count it when it tries.
      }
    }
  }
}

function countSpans(path: string): number {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return Array.isArray(v) ? v.length : 0;
  } catch {
    return 0;
  }
}

function toStored(s: ReadableSpan): StoredSpan {
  return {
    name: s.name,
    kind: s.kind,
    ctx: s.spanContext(),
    parent: s.parentSpanContext,
    start: s.startTime,
    end: s.endTime,
    duration: s.duration,
    status: s.status,
    attributes: s.attributes,
    links: s.links,
    events: s.events,
    resource: s.resource.attributes,
    scope: s.instrumentationScope,
    dropped: [s.droppedAttributesCount, s.droppedEventsCount, s.droppedLinksCount],
  };
}

function fromStored(s: StoredSpan): ReadableSpan {
  return {
    name: s.name,
    kind: s.kind,
    spanContext: () => s.ctx,
    parentSpanContext: s.parent,
    startTime: s.start,
    endTime: s.end,
    duration: s.duration,
    status: s.status,
    attributes: s.attributes,
    links: s.links,
    events: s.events,
    ended: true,
    resource: resourceFromAttributes(s.resource),
    instrumentationScope: s.scope,
    droppedAttributesCount: s.dropped[0],
    droppedEventsCount: s.dropped[1],
    droppedLinksCount: s.dropped[2],
  };
}

/** The spool decorator for the configured state dir, or undefined when it is switched off. */
export function spanSpoolFor(
  config: { state_dir: string; lifecycle: { traces_spool_max_bytes: number } },
  logger: Logger,
  registry?: Registry,
): ((exporter: SpanExporter) => SpanExporter) | undefined {
  const maxBytes = config.lifecycle.traces_spool_max_bytes;
  if (maxBytes <= 0) return undefined;
  const dir = join(config.state_dir, 'spans');
  return (exporter) => new SpanSpool(exporter, { dir, maxBytes, logger, registry });
}
