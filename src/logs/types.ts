// The one record shape of the log path, from its source to the exporter (see README "The path
// of a line"). A record is born in a source (src/logs/record.ts newRecord, or newRecordFromBytes
// for the file tailer's body ranges) with its resource,
// stream (log.iostream), times and ack; processing stages change only the fields they own
// (RECORD_FIELDS); the exporter encodes it; the ack goes back to the source once delivered.
import type { Ack } from './ack.js';
import type { BatchItem, RunSink } from './run.js';

/** The resource (one per container, or per submitting component) shared by its records. */
export interface LogResource {
  /** Stable key (the container id). */
  readonly key: string;
  /** OTel resource attributes: strings or string arrays. */
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
  /** Encoded protobuf `Resource` message, filled lazily by the protobuf encoder. */
  encoded?: Buffer;
}

/** A record attribute value (processing flattens nested JSON to dotted keys). */
export type AttrValue = string | number | boolean;

/** One log record as it travels through the pipeline. */
export interface LogRecord {
  readonly resource: LogResource;
  /** log.iostream. Set once, by the source; the encoders write it, nothing else does. */
  readonly stream: 'stdout' | 'stderr';
  /**
   * The line without its newline: the bytes the source read (Buffer) until a processing stage
   * needs the text; stages that change it store a string. A file tailer's record keeps it as a
   * range of the decoder's body slab and makes the Buffer on first read (record.ts BytesRecord).
   */
  body: Buffer | string;
  /** Docker's timestamp (of the first line): seconds since the epoch and nanoseconds within. */
  readonly timeSec: number;
  readonly timeNanos: number;
  /** When the agent read the line, ms since the epoch. */
  readonly observedMs: number;
  /** Record attributes besides log.iostream (Docker `attrs`, truncation flag, parsed fields). */
  attributes?: Record<string, AttrValue>;
  /** Set by body parsing (OpenTelemetry SeverityNumber 1..24 and the original text). */
  severityNumber?: number;
  severityText?: string;
  /** Trace context lifted from the body: 32 / 16 lowercase hex digits, W3C flags. */
  traceId?: string;
  spanId?: string;
  traceFlags?: number;
  /** Attributes left out by the parser bounds (OTLP dropped_attributes_count). */
  droppedAttributesCount?: number;
  /** Source lines in this record (multiline grouping); 1 when absent. */
  lines?: number;
  /**
   * OTLP event_name of an event record submitted through LogsComponent.intake() (exec audit:
   * `container.exec`). An event is not a line of a container's output: the encoders write no
   * log.iostream for it (its `stream` is not read).
   */
  eventName?: string;
  /** Acknowledge once delivered, rejected or dropped (src/logs/ack.ts). Opaque. */
  ack?: Ack;
}

/**
 * Which stage sets which field. Each field has one owner; `body` is born in the source and may be
 * replaced by the stages listed, in this order. test/unit/logs/record.test.ts checks this table
 * against the code paths. A line of a run (src/logs/run.ts, the file tailer's lines no stage
 * changes) is never a record object: its source fields (resource, stream, body, times) are written
 * once, encoded, by run.ts frameLine, and the run carries the ack; the other fields stay unset.
 */
export const RECORD_FIELDS: Readonly<Record<keyof LogRecord, string>> = {
  resource: 'source (discovery gives it: src/logs/resource.ts)',
  stream:
    'source (newRecord; log.iostream is written only by the encoders, or by run.ts frameLine for a run)',
  body: 'source; replaced by multiline (join), parse (message field), redact (mask)',
  timeSec: 'source (first line of a partial or multiline group)',
  timeNanos: 'source',
  observedMs: 'source',
  attributes: 'source (Docker attrs, harbormaster.log.truncated); parse adds, redact masks',
  severityNumber: 'parse (or the source of an intake() record: exec audit)',
  severityText: 'parse (or the source of an intake() record: exec audit)',
  traceId: 'parse',
  spanId: 'parse',
  traceFlags: 'parse',
  droppedAttributesCount: 'parse',
  lines: 'multiline',
  eventName: 'source of an intake() record (exec audit); never set for container output',
  ack: 'source (partial lines and multiline groups join the acks of their lines)',
};

export type ExportResult =
  /** rejected: records the receiver refused in an OTLP partial success (dropped and counted). */
  | { status: 'success'; rejected?: number; message?: string }
  | { status: 'retryable'; error: Error; retryAfterMs?: number }
  | { status: 'failure'; error: Error };

export interface LogExporter {
  readonly name: string;
  /**
   * Writes OTLP protobuf: a run of encoded lines (src/logs/run.ts) is copied as it is. Sources
   * hand over runs only to such an exporter; others get them expanded if they get any.
   */
  readonly acceptsRuns?: boolean;
  /** Records and runs of encoded lines (src/logs/run.ts batchRecords expands the runs). */
  export(batch: readonly BatchItem[], signal: AbortSignal): Promise<ExportResult>;
  shutdown?(): Promise<void>;
}

/** Bounded reasons for dropped data (label values of harbormaster_log_drops_total). */
export const DROP_REASONS = [
  'malformed_record',
  'oversized_raw_line',
  'export_rejected',
  'file_removed_unread',
  'file_truncated',
  'rotated_away',
  // Processing (src/logs/processing): drop / keep filters and the per-container rate limit.
  'filter_drop',
  'filter_keep',
  'rate_limited',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Where sources put records: the bounded queue. `hold` counts bytes a source or stage keeps
 * outside the queue (partial lines, multiline groups) against the same memory bound.
 */
export interface RecordSink {
  /** Resolves when there is room again; undefined when there is room now. */
  waitForSpace(): Promise<void> | undefined;
  push(record: LogRecord): void;
  hold(delta: number): void;
  /**
   * Whole lines already encoded (src/logs/run.ts): present only when the exporter accepts runs
   * and no processing stage of the source needs to see every record.
   */
  runs?: RunSink;
}
