// NDJSON log exporter: one JSON object per record, to stdout or appended to a file. A file that
// cannot be opened or written is a retryable export failure naming the path (the pipeline
// retries with backoff and keeps the records); it never crashes the agent.
import { createWriteStream, type WriteStream } from 'node:fs';
import { batchRecords, type BatchItem } from '../logs/run.js';
import type { ExportResult, LogExporter, LogRecord } from '../logs/types.js';
import { nanosString } from './otlp-logs-encode.js';

export function toNdjsonLine(r: LogRecord): string {
  return `${JSON.stringify({
    time_unix_nano: nanosString(r.timeSec, r.timeNanos),
    observed_time_unix_nano: nanosString(
      Math.floor(r.observedMs / 1000),
      (r.observedMs % 1000) * 1e6,
    ),
    body: typeof r.body === 'string' ? r.body : r.body.toString('utf8'),
    attributes:
      r.eventName === undefined ? { ...r.attributes, 'log.iostream': r.stream } : r.attributes,
    event_name: r.eventName,
    resource: r.resource.attributes,
    severity_number: r.severityNumber,
    severity_text: r.severityText,
    trace_id: r.traceId,
    span_id: r.spanId,
    flags: r.traceFlags,
    dropped_attributes_count: r.droppedAttributesCount,
  })}\n`;
}

export class NdjsonLogExporter implements LogExporter {
  readonly name = 'ndjson';
  private out: NodeJS.WritableStream | undefined;
  private file: WriteStream | undefined;
  private lastError: Error | undefined;

  constructor(private readonly dest: string) {
    if (dest === '-' || dest === '') this.out = process.stdout;
  }

  private stream(): NodeJS.WritableStream {
    if (this.out) return this.out;
    const f = createWriteStream(this.dest, { flags: 'a' });
    f.on('error', (err) => {
      this.lastError = new Error(`writing NDJSON logs to ${this.dest} failed: ${err.message}`, {
        cause: err,
      });
      // Opened again on the next export.
      if (this.file === f) {
        this.file = undefined;
        this.out = undefined;
      }
      f.destroy();
    });
    this.file = f;
    this.out = f;
    return f;
  }

  export(batch: readonly BatchItem[]): Promise<ExportResult> {
    let text = '';
    for (const r of batchRecords(batch)) text += toNdjsonLine(r);
    const out = this.stream();
    return new Promise((resolve) => {
      out.write(text, (err) => {
        if (!err) return resolve({ status: 'success' });
        const error =
          this.lastError ??
          new Error(`writing NDJSON logs to ${this.dest || 'stdout'} failed: ${err.message}`);
        this.lastError = undefined;
        resolve({ status: 'retryable', error });
      });
    });
  }

  async shutdown(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (f && !f.destroyed) await new Promise<void>((resolve) => f.end(() => resolve()));
  }
}
