// Shared types of the processing stages. The stages work on the pipeline's LogRecord
// (src/logs/types.ts) directly.
export type { AttrValue } from '../types.js';

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
