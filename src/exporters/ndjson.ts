// NDJSON log exporter: one JSON object per record, to stdout or appended to a file.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ExportResult, LogExporter, LogRecord } from '../logs/types.js';
import { nanosString } from './otlp-logs-encode.js';

export function toNdjsonLine(r: LogRecord): string {
  return `${JSON.stringify({
    time_unix_nano: nanosString(r.timeSec, r.timeNanos),
    observed_time_unix_nano: nanosString(
      Math.floor(r.observedMs / 1000),
      (r.observedMs % 1000) * 1e6,
    ),
    body: r.body.toString('utf8'),
    attributes: { 'log.iostream': r.stream, ...r.attributes },
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
  private readonly out: NodeJS.WritableStream;
  private readonly file: WriteStream | undefined;

  constructor(dest: string) {
    if (dest === '-' || dest === '') {
      this.out = process.stdout;
    } else {
      this.file = createWriteStream(dest, { flags: 'a' });
      this.out = this.file;
    }
  }

  export(batch: readonly LogRecord[]): Promise<ExportResult> {
    let text = '';
    for (const r of batch) text += toNdjsonLine(r);
    return new Promise((resolve) => {
      this.out.write(text, (err) => {
        resolve(err ? { status: 'retryable', error: err } : { status: 'success' });
      });
    });
  }

  async shutdown(): Promise<void> {
    const f = this.file;
    if (f) await new Promise<void>((resolve) => f.end(() => resolve()));
  }
}
