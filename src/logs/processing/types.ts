// The record shape the processing stages work on. The pipeline adapts its own LogRecord to this
// (body as a string, time as bigint nanoseconds) and back; `meta` carries whatever the pipeline
// needs to keep with a record (its checkpoint position, resource, …) untouched.

/** An attribute value after processing: flat scalars (nested JSON is flattened to dotted keys). */
export type AttrValue = string | number | boolean;

export interface ProcessableRecord<M = unknown> {
  /** The log line (or the joined lines of a multiline group, separated by "\n"). */
  body: string;
  stream: 'stdout' | 'stderr';
  /** Docker's timestamp of the (first) line, nanoseconds since the epoch. */
  timeUnixNano: bigint;
  /** Record attributes (log.iostream etc.); parsed fields are added, existing keys win. */
  attributes: Record<string, AttrValue>;
  /** The original severity text (e.g. "warning"), or the canonical name for numeric levels. */
  severityText?: string;
  /** OpenTelemetry SeverityNumber 1..24. */
  severityNumber?: number;
  /** 32 lowercase hex digits, never all zero. */
  traceId?: string;
  /** 16 lowercase hex digits, never all zero. */
  spanId?: string;
  /** W3C trace flags (0..255). */
  traceFlags?: number;
  /** Attributes left out because of the bounds (OTLP dropped_attributes_count). */
  droppedAttributesCount?: number;
  /**
   * Opaque data of the pipeline. For a multiline group it is the meta of the group's LAST line
   * (so the checkpoint covers every line in the record); `firstMeta` is that of the first line.
   */
  meta?: M;
  firstMeta?: M;
  /** Number of source lines in this record (1 unless multiline grouping joined lines). */
  lines?: number;
}

/** Bounded reasons for records the processing stages drop (labels of the drop counter). */
export const PROCESSING_DROP_REASONS = ['filter_drop', 'filter_keep', 'rate_limited'] as const;
export type ProcessingDropReason = (typeof PROCESSING_DROP_REASONS)[number];

/** Bounded names of things the stages count (besides drops). */
export const PROCESSING_EVENTS = [
  /** A body parsed as JSON / logfmt. */
  'parsed_json',
  'parsed_logfmt',
  /** parser json/logfmt/auto chosen but the line was not parseable: shipped unchanged. */
  'parse_failed',
  /** Attributes left out because of max_attributes / max_depth. */
  'attributes_dropped',
  /** Attribute values or keys cut to max_value_bytes. */
  'values_truncated',
  /** A multiline group split because it hit max_lines / max_bytes. */
  'multiline_split',
  /** A multiline group emitted by the flush timeout. */
  'multiline_timeout',
  /** A label with an invalid value (bad regex, bad number): ignored. */
  'invalid_label',
  /** A redaction pattern or key masked something. */
  'redacted',
  /** A label asked for more than the operator's setting (bytes, lines, flush time, rate): clamped. */
  'label_clamped',
  /** Processing one record took longer than logs.processing.record_budget_seconds. */
  'over_budget',
] as const;
export type ProcessingEvent = (typeof PROCESSING_EVENTS)[number];

/** Where the stages report counts; the pipeline wires these to prom-client counters. */
export interface ProcessingHooks {
  drop?(reason: ProcessingDropReason, n: number): void;
  event?(name: ProcessingEvent, n: number): void;
  /** Seconds spent processing one pushed record (all stages); for a histogram. */
  recordSeconds?(seconds: number): void;
  /** Called once per distinct cause (e.g. one invalid label of one container). */
  warnOnce?(cause: string, details: Record<string, unknown>, message: string): void;
}

/** Milliseconds clock (injected so timeouts and rate limits are testable). */
export type Clock = () => number;
