/** The resource (one per container) shared by all of its records. */
export interface LogResource {
  /** Stable key (the container id). */
  readonly key: string;
  /** OTel resource attributes: strings or string arrays. */
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
  /** Encoded protobuf `Resource` message, filled lazily by the protobuf encoder. */
  encoded?: Buffer;
}

/** Where a record ends in its log file: the checkpoint that may be committed once it is delivered. */
export interface LogPosition {
  /** The file the position refers to (identity for the checkpoint). */
  readonly file: FileIdentity;
  readonly offset: number;
}

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  /** Hex digest of the first fpLen bytes. */
  readonly fp: string;
  readonly fpLen: number;
  /** Increases with every file a tailer opens (orders positions across rotations). */
  readonly seq: number;
}

/** One log line as it travels through the pipeline. */
export interface LogRecord {
  readonly resource: LogResource;
  /** UTF-8 bytes of the line, without the trailing newline. */
  readonly body: Buffer;
  readonly stream: 'stdout' | 'stderr';
  /** Docker's timestamp: seconds since the epoch and the nanoseconds within that second. */
  readonly timeSec: number;
  readonly timeNanos: number;
  /** When the agent read the line, ms since the epoch. */
  readonly observedMs: number;
  /** Record attributes besides log.iostream (Docker `attrs`, truncation flag). */
  readonly attributes?: Readonly<Record<string, string | boolean | number>>;
  /** Checkpoint position to commit once this record is delivered (undefined: nothing to commit). */
  readonly pos?: LogPosition;
  /** Tailer key (container id) the position belongs to. */
  readonly source?: string;
  /** Engine API reader position to commit once this record is delivered (instead of pos). */
  readonly apiCursor?: ApiCursor;
  /** Only carries a position to commit (its lines were dropped by processing): never exported. */
  readonly commitOnly?: boolean;
  /** Set by body parsing (OpenTelemetry SeverityNumber 1..24 and the original text). */
  readonly severityNumber?: number;
  readonly severityText?: string;
  /** Trace context lifted from the body: 32 / 16 lowercase hex digits, W3C flags. */
  readonly traceId?: string;
  readonly spanId?: string;
  readonly traceFlags?: number;
  /** Attributes left out by the parser bounds (OTLP dropped_attributes_count). */
  readonly droppedAttributesCount?: number;
}

/** Where an Engine API log stream was delivered up to (ApiLogCursor of api-reader.ts). */
export interface ApiCursor {
  readonly stdout?: { readonly t: string; readonly n: number };
  readonly stderr?: { readonly t: string; readonly n: number };
}

export type ExportResult =
  | { status: 'success' }
  | { status: 'retryable'; error: Error; retryAfterMs?: number }
  | { status: 'failure'; error: Error };

export interface LogExporter {
  readonly name: string;
  export(batch: readonly LogRecord[], signal: AbortSignal): Promise<ExportResult>;
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
