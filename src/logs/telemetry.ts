// The log path's own metrics, in one place: every counter and gauge of log shipping, the
// per-container shipping stats, and a read-only snapshot for the status page. Sources, stages and
// the export loop report here through narrow methods; nothing else defines log metrics.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { OnceLogger, type Logger } from '../util/logger.js';
import { PROCESSING_EVENTS, type ProcessingEvent } from './processing/types.js';
import { batchLines, itemLines, type BatchItem } from './run.js';
import { DROP_REASONS, type DropReason } from './types.js';

type Stream = 'stdout' | 'stderr';

/** Counters of one source (a container's log), updated on the hot path without label lookups. */
export interface SourceStats {
  readonly key: string;
  readonly name: string;
  readonly kind: 'file' | 'api';
  readonly lines: Record<Stream, number>;
  readonly bytes: Record<Stream, number>;
  /** Records delivered (acknowledged by the exporter). */
  shipped: number;
  lastError: string | undefined;
  /** The last export error of a batch with this source's records; cleared when one is delivered. */
  lastExportError: string | undefined;
  /** Bytes written but not read yet (file sources; 0 when unknown). */
  behind(): number;
  /** When the oldest data not delivered yet was written (ms; undefined: none or unknown). */
  oldest(): number | undefined;
}

/** What the status page reads (a copy: changing it changes nothing). */
export interface LogShippingSnapshot {
  queue: {
    records: number;
    bytes: number;
    heldBytes: number;
    inflightBytes: number;
    maxBytes: number;
  };
  drops: Partial<Record<DropReason, number>>;
  exported: number;
  lastExportError: string | undefined;
  /** When a batch was last delivered (ms since the epoch); undefined: never. */
  lastExportAt: number | undefined;
  /** Failed export attempts by kind. */
  exportFailures: Partial<Record<'retryable' | 'permanent', number>>;
  containers: {
    key: string;
    name: string;
    kind: 'file' | 'api';
    linesRead: number;
    bytesRead: number;
    linesShipped: number;
    bytesBehind: number;
    lastError: string | undefined;
    lastExportError: string | undefined;
  }[];
}

export interface QueueView {
  /** Lines queued (a run of encoded lines counts its lines). */
  readonly queuedLines: number;
  readonly bytes: number;
  readonly held: number;
  readonly inflight: number;
  readonly maxBytes: number;
}

export class LogTelemetry {
  private readonly once: OnceLogger;
  private readonly sources = new Map<string, SourceStats & { reported: Record<string, number> }>();
  private readonly dropCounts = new Map<DropReason, number>();
  private exportedTotal = 0;
  private lastExportError: string | undefined;
  private lastExportAt: number | undefined;
  private readonly failureCounts = new Map<'retryable' | 'permanent', number>();
  private queue: QueueView | undefined;
  private readonly m;

  constructor(
    registry: Registry,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.once = new OnceLogger(log);
    const registers = [registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client collect() binds its own this
    const self = this;
    const drops = new Counter({
      name: 'harbormaster_log_drops_total',
      help: 'Log data dropped, by reason (lines, or files for file_removed_unread / rotated_away / file_truncated).',
      labelNames: ['reason'],
      registers,
    });
    for (const r of DROP_REASONS) drops.inc({ reason: r }, 0);
    const events = new Counter({
      name: 'harbormaster_log_processing_events_total',
      help: 'Things log processing did, by event (parsed_json, parsed_logfmt, parse_failed, attributes_dropped, values_truncated, multiline_split, multiline_timeout, invalid_label, redacted, label_clamped, over_budget).',
      labelNames: ['event'],
      registers,
    });
    for (const e of PROCESSING_EVENTS) events.inc({ event: e }, 0);
    const linesRead = new Counter({
      name: 'harbormaster_log_lines_read_total',
      help: 'Json-file records read, per container and stream.',
      labelNames: ['container_name', 'stream'],
      registers,
      collect() {
        self.reportRead();
      },
    });
    const bytesRead = new Counter({
      name: 'harbormaster_log_bytes_read_total',
      help: 'Bytes of json-file records read, per container and stream.',
      labelNames: ['container_name', 'stream'],
      registers,
    });
    const recordSeconds = new Histogram({
      name: 'harbormaster_log_record_processing_seconds',
      help: 'Time to process one log record (multiline, filters, parsing, redaction); records over logs.processing.record_budget_seconds are also counted as over_budget.',
      buckets: [0.00001, 0.0001, 0.001, 0.01, 0.05, 0.25, 1],
      registers,
    });
    this.m = {
      drops,
      events,
      recordSeconds,
      linesRead,
      bytesRead,
      exported: new Counter({
        name: 'harbormaster_log_records_exported_total',
        help: 'Log records the exporter delivered.',
        registers,
      }),
      failures: new Counter({
        name: 'harbormaster_log_export_failures_total',
        help: 'Failed export attempts, by kind (retryable or permanent).',
        labelNames: ['kind'],
        registers,
      }),
      lostBytes: new Counter({
        name: 'harbormaster_log_lost_bytes_total',
        help: 'Bytes of container log data lost before the agent could read them, by reason (file_truncated: a log file truncated in place; rotated_away: a generation Docker deleted before the agent opened it, its size as last seen; lower bounds: what was written after the last size seen is not known). Beside the per-file counts in harbormaster_log_drops_total.',
        labelNames: ['reason'],
        registers,
      }),
      checkpointFailures: new Counter({
        name: 'harbormaster_log_checkpoint_write_failures_total',
        help: 'Failed writes of the log checkpoint file (state dir read-only, full, or not a directory); lines delivered since the last good write may be sent again after a restart.',
        registers,
      }),
      exportSeconds: new Histogram({
        name: 'harbormaster_log_export_duration_seconds',
        help: 'Time of one log export attempt (encoding the batch, sending it, the receiver answering), delivered or not. One batch is in flight at a time: this time and harbormaster_log_checkpoint_write_seconds per batch bound the lines per second the agent can ship.',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 10],
        registers,
      }),
      checkpointSeconds: new Histogram({
        name: 'harbormaster_log_checkpoint_write_seconds',
        help: 'Time to persist the log checkpoints after a delivered batch (one durable write in place, O_DSYNC); the next batch is sent once it is written.',
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
        registers,
      }),
      retries: new Counter({
        name: 'harbormaster_log_export_retries_total',
        help: 'Export attempts that were retries.',
        registers,
      }),
      truncated: new Counter({
        name: 'harbormaster_log_lines_truncated_total',
        help: 'Lines longer than logs.max_line_bytes that were shipped truncated.',
        registers,
      }),
      queueRecords: new Gauge({
        name: 'harbormaster_log_queue_records',
        help: 'Log lines waiting in the log queue (a record is one line, however many lines a multiline record joined).',
        registers,
        collect() {
          this.set(self.queue?.queuedLines ?? 0);
        },
      }),
      queueBytes: new Gauge({
        name: 'harbormaster_log_queue_bytes',
        help: 'Bytes waiting in the log queue (bound: logs.queue_max_bytes).',
        registers,
        collect() {
          this.set(self.queue?.bytes ?? 0);
        },
      }),
      heldBytes: new Gauge({
        name: 'harbormaster_log_held_bytes',
        help: 'Bytes the log path holds outside the queue (partial lines, multiline groups, the batch in flight); counted against logs.queue_max_bytes with the queue.',
        registers,
        collect() {
          this.set((self.queue?.held ?? 0) + (self.queue?.inflight ?? 0));
        },
      }),
      behind: new Gauge({
        name: 'harbormaster_log_file_bytes_behind',
        help: 'Bytes written to a container log (all open generations) but not read yet.',
        labelNames: ['container_name'],
        registers,
        collect() {
          this.reset();
          for (const s of self.sources.values())
            if (s.kind === 'file') this.set({ container_name: s.name }, s.behind());
        },
      }),
      // One series, the maximum over containers: an alert needs "is any log data old", and a
      // per-container series would add a series per container (bytes_behind has the detail)
      // and outlive the containers it names. Computed at scrape time from state the sources
      // keep per read chunk and per poll while paused, never per line.
      oldestUnshipped: new Gauge({
        name: 'harbormaster_log_oldest_unshipped_seconds',
        help: 'Age of the oldest json-file log data not delivered yet, over all containers: the time of the oldest record read and not acknowledged by the receiver, or, for data not read yet (behind, or reading paused on a full queue), the mtime of the oldest log generation with unread bytes (a lower bound). 0 when every log is caught up.',
        registers,
        collect() {
          this.set(self.oldestUnshippedSeconds());
        },
      }),
      tailers: new Gauge({
        name: 'harbormaster_log_tailers',
        help: 'Container log files being tailed.',
        registers,
        collect() {
          let n = 0;
          for (const s of self.sources.values()) if (s.kind === 'file') n++;
          this.set(n);
        },
      }),
    };
    this.m.lostBytes.inc({ reason: 'file_truncated' }, 0);
    this.m.lostBytes.inc({ reason: 'rotated_away' }, 0);
  }

  /** The queue whose depth the gauges and the snapshot report. */
  watchQueue(q: QueueView): void {
    this.queue = q;
  }

  /** Stats of a new source (a container's log); remove with removeSource. */
  addSource(
    key: string,
    name: string,
    kind: 'file' | 'api',
    behind: () => number = () => 0,
    oldest: () => number | undefined = () => undefined,
  ): SourceStats {
    const s = {
      key,
      name,
      kind,
      lines: { stdout: 0, stderr: 0 },
      bytes: { stdout: 0, stderr: 0 },
      shipped: 0,
      lastError: undefined,
      lastExportError: undefined,
      behind,
      oldest,
      reported: {},
    };
    this.sources.set(key, s);
    return s;
  }

  /** Seconds since the oldest data not delivered yet was written, over all sources; 0: none. */
  oldestUnshippedSeconds(): number {
    let t: number | undefined;
    for (const s of this.sources.values()) {
      const o = s.oldest();
      if (o !== undefined && (t === undefined || o < t)) t = o;
    }
    return t === undefined ? 0 : Math.max(0, (this.now() - t) / 1000);
  }

  removeSource(key: string): void {
    const s = this.sources.get(key);
    if (!s) return;
    this.reportRead();
    this.sources.delete(key);
    for (const st of ['stdout', 'stderr']) {
      this.m.linesRead.remove({ container_name: s.name, stream: st });
      this.m.bytesRead.remove({ container_name: s.name, stream: st });
    }
  }

  private reportRead(): void {
    for (const s of this.sources.values()) {
      for (const st of ['stdout', 'stderr'] as const) {
        const lk = `l${st}`;
        const bk = `b${st}`;
        const dl = s.lines[st] - (s.reported[lk] ?? 0);
        const db = s.bytes[st] - (s.reported[bk] ?? 0);
        if (dl > 0 || s.reported[lk] === undefined)
          this.m.linesRead.inc({ container_name: s.name, stream: st }, dl);
        if (db > 0 || s.reported[bk] === undefined)
          this.m.bytesRead.inc({ container_name: s.name, stream: st }, db);
        s.reported[lk] = s.lines[st];
        s.reported[bk] = s.bytes[st];
      }
    }
  }

  /** Data dropped: counted, and logged once per reason. */
  drop(reason: DropReason, n = 1): void {
    this.m.drops.inc({ reason }, n);
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + n);
    this.once.warn(
      `drop:${reason}`,
      { reason },
      `Log data was dropped (reason ${reason}); counted in harbormaster_log_drops_total, logged once per reason.`,
    );
  }

  /** Bytes lost before they could be read (counted with the reason; the drop logs it). */
  lost(reason: 'file_truncated' | 'rotated_away', bytes: number): void {
    this.m.lostBytes.inc({ reason }, bytes);
  }

  recordSeconds(s: number): void {
    this.m.recordSeconds.observe(s);
  }

  event(name: ProcessingEvent, n = 1): void {
    this.m.events.inc({ event: name }, n);
  }

  truncated(): void {
    this.m.truncated.inc();
  }

  exported(batch: readonly BatchItem[]): void {
    const lines = batchLines(batch);
    this.m.exported.inc(lines);
    this.exportedTotal += lines;
    this.lastExportError = undefined;
    this.lastExportAt = this.now();
    this.eachSource(batch, (s, n) => {
      s.shipped += n;
      s.lastExportError = undefined;
    });
  }

  /** A failed attempt; with the batch, each of its sources remembers the error. */
  exportFailure(
    kind: 'retryable' | 'permanent',
    error?: Error,
    batch?: readonly BatchItem[],
  ): void {
    this.m.failures.inc({ kind });
    this.failureCounts.set(kind, (this.failureCounts.get(kind) ?? 0) + 1);
    if (!error) return;
    this.lastExportError = error.message;
    if (batch) this.eachSource(batch, (s) => (s.lastExportError = error.message));
  }

  /** fn once per entry of a known source with its lines (entries of one source come in runs). */
  private eachSource(
    batch: readonly BatchItem[],
    fn: (s: SourceStats, lines: number) => void,
  ): void {
    let key: string | undefined;
    let s: SourceStats | undefined;
    for (const r of batch) {
      if (r.resource.key !== key) {
        key = r.resource.key;
        s = this.sources.get(key);
      }
      if (s) fn(s, itemLines(r));
    }
  }

  private lastCheckpointWarnAt = -Infinity;

  /** A checkpoint write failed: counted; a warning at most once a minute (names the path). */
  checkpointFailed(err: unknown, file: string, now = Date.now()): void {
    this.m.checkpointFailures.inc();
    if (now - this.lastCheckpointWarnAt < 60_000) return;
    this.lastCheckpointWarnAt = now;
    this.log.warn(
      { err, file },
      'Writing the log checkpoint file failed; log shipping goes on, and delivered lines may be sent again after a restart (harbormaster_log_checkpoint_write_failures_total; warned at most once a minute).',
    );
  }

  retry(): void {
    this.m.retries.inc();
  }

  exportSeconds(s: number): void {
    this.m.exportSeconds.observe(s);
  }

  checkpointSeconds(s: number): void {
    this.m.checkpointSeconds.observe(s);
  }

  /** Logged once per cause. */
  warn(cause: string, obj: Record<string, unknown>, msg: string): void {
    this.once.warn(cause, obj, msg);
  }

  snapshot(): LogShippingSnapshot {
    const q = this.queue;
    return {
      queue: {
        records: q?.queuedLines ?? 0,
        bytes: q?.bytes ?? 0,
        heldBytes: q?.held ?? 0,
        inflightBytes: q?.inflight ?? 0,
        maxBytes: q?.maxBytes ?? 0,
      },
      drops: Object.fromEntries(this.dropCounts),
      exported: this.exportedTotal,
      lastExportError: this.lastExportError,
      lastExportAt: this.lastExportAt,
      exportFailures: Object.fromEntries(this.failureCounts),
      containers: [...this.sources.values()].map((s) => ({
        key: s.key,
        name: s.name,
        kind: s.kind,
        linesRead: s.lines.stdout + s.lines.stderr,
        bytesRead: s.bytes.stdout + s.bytes.stderr,
        linesShipped: s.shipped,
        bytesBehind: s.behind(),
        lastError: s.lastError,
        lastExportError: s.lastExportError,
      })),
    };
  }
}
