// The bridge between the log pipeline and the processing stages of one container: the tailer (or
// the Engine API reader) pushes LogRecords after partial-line reassembly; they are converted to
// ProcessableRecords, run through multiline → filters → rate limit → parsing → redaction, and
// converted back into the bounded queue.
//
// Checkpoints: every line that comes in gets a rank (its arrival number). The position a shipped
// record may commit is the earliest of its own (its last line's) and the position BEFORE the first
// line of every group multiline grouping still holds, and it never moves backwards. Records that
// a filter or the rate limit dropped still carry their position to the export loop as
// commit-only markers, so a container whose last lines are dropped is committed (and retired).
import type { ApiCursor, LogPosition, LogRecord } from '../types.js';
import type { ContainerProcessor, LogProcessor } from './processor.js';
import type { AttrValue, ProcessableRecord } from './types.js';

/** What a delivered record lets the pipeline commit. */
interface Commit {
  pos?: LogPosition;
  apiCursor?: ApiCursor;
}

interface Meta {
  rec: LogRecord;
  /** The body as converted (unchanged body: the original Buffer is shipped). */
  text: string;
  /** Arrival rank of this line. */
  rank: number;
  /** The commit point after the previous line (rank - 1); undefined: nothing to commit yet. */
  before: Commit | undefined;
  /** The commit point after this line. */
  after: Commit | undefined;
}

/** Where processed records go (the BoundedQueue). */
export interface ProcessedSink {
  waitForSpace(): Promise<void> | undefined;
  push(record: LogRecord): void;
  /** A commit-only marker (may coalesce with a marker of the same source at the queue's tail). */
  pushCommit?(record: LogRecord): void;
  /** Bytes held outside the queue (the tailer's partial lines), see TailerSink.hold. */
  hold?(delta: number): void;
}

function commitOf(r: LogRecord): Commit | undefined {
  // The record itself is a Commit when it carries exactly one of the two (no object per line).
  if (r.pos) return r.apiCursor ? { pos: r.pos } : r;
  if (r.apiCursor) return r;
  return undefined;
}

/**
 * A record as the processing stages see it. The nanosecond timestamp (a BigInt) is computed only
 * when a stage asks for it: the sink itself ships the source record's seconds and nanoseconds.
 */
class SinkRecord implements ProcessableRecord<Meta> {
  severityText?: string;
  severityNumber?: number;
  traceId?: string;
  spanId?: string;
  traceFlags?: number;
  droppedAttributesCount?: number;
  firstMeta?: Meta;
  lines?: number;
  private time: bigint | undefined;

  constructor(
    public body: string,
    public stream: 'stdout' | 'stderr',
    public attributes: Record<string, AttrValue>,
    public meta: Meta,
  ) {}

  get timeUnixNano(): bigint {
    if (this.time === undefined) {
      const r = this.meta.rec;
      this.time = BigInt(r.timeSec) * 1_000_000_000n + BigInt(r.timeNanos);
    }
    return this.time;
  }

  set timeUnixNano(v: bigint) {
    this.time = v;
  }
}

const EMPTY = Buffer.alloc(0);

export class ProcessingSink {
  readonly processor: ContainerProcessor<Meta>;
  private rank = 0;
  private last: Commit | undefined;
  private lastRec: LogRecord | undefined;
  /** Highest commit point handed on so far (commits never move backwards). */
  private emittedRank = -1;
  private emitted: Commit | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    lp: LogProcessor,
    labels: Readonly<Record<string, string>> | undefined,
    containerName: string,
    private readonly out: ProcessedSink,
    /** Where reading started (API cursor): the commit point before the first line. */
    initial?: { apiCursor: ApiCursor },
  ) {
    this.last = initial;
    this.emitted = initial;
    this.processor = lp.forContainer<Meta>(
      labels,
      { emit: (r) => this.emit(r), dropped: (r) => this.dropped(r) },
      containerName,
    );
  }

  waitForSpace(): Promise<void> | undefined {
    return this.out.waitForSpace();
  }

  /** The tailer's partial-line bytes count against the queue's bound, as without processing. */
  hold(delta: number): void {
    this.out.hold?.(delta);
  }

  /** One record after partial-line reassembly. */
  push(r: LogRecord): void {
    const before = this.last;
    const own = commitOf(r);
    if (own) this.last = own;
    this.lastRec = r;
    const text = r.body.toString('utf8');
    const attributes: Record<string, AttrValue> = { 'log.iostream': r.stream };
    if (r.attributes) for (const k in r.attributes) attributes[k] = r.attributes[k]!;
    const rec = new SinkRecord(text, r.stream, attributes, {
      rec: r,
      text,
      rank: this.rank++,
      before,
      after: this.last,
    });
    this.processor.push(rec);
    this.settle();
    if (!this.timer && !this.closed) this.schedule();
  }

  /** Ships every held group (the source finished, or the agent stops). */
  flushAll(): void {
    // Held blank lines re-pushed by a finished group may open a group again: a few rounds.
    for (let i = 0; i < 4 && this.processor.nextDeadline() !== undefined; i++)
      this.processor.flushAll();
    this.settle();
  }

  /**
   * Nothing held any more, but the last record handed on was not the last line (groups of the
   * two streams finished out of order): a marker commits up to the last line.
   */
  private settle(): void {
    if (this.emittedRank >= this.rank - 1 || !this.lastRec || !this.last) return;
    if (this.processor.nextDeadline() !== undefined) return;
    this.emittedRank = this.rank - 1;
    this.emitted = this.last;
    this.pushMarker(this.lastRec, this.last);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const d = this.processor.nextDeadline();
    if (d === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.closed) return;
        this.processor.flushExpired();
        this.settle();
        this.schedule();
      },
      Math.max(1, d - Date.now()),
    );
    this.timer.unref();
  }

  /** The commit point a record whose last line is `m` may carry. */
  private commitFor(m: Meta): Commit | undefined {
    let rank = m.rank;
    let c = m.after;
    if (this.processor.nextDeadline() !== undefined) {
      for (const p of this.processor.pendingFirstMetas()) {
        if (p.rank - 1 < rank) {
          rank = p.rank - 1;
          c = p.before;
        }
      }
    }
    if (rank <= this.emittedRank) return this.emitted;
    this.emittedRank = rank;
    this.emitted = c;
    return c;
  }

  private emit(rec: ProcessableRecord<Meta>): void {
    const m = rec.meta!;
    const first = rec.firstMeta ?? m;
    const src = m.rec;
    const c = this.commitFor(m);
    let attributes: Record<string, AttrValue> | undefined;
    for (const k in rec.attributes) {
      if (k === 'log.iostream') continue;
      (attributes ??= {})[k] = rec.attributes[k]!;
    }
    // Nothing changed (the common case: no stage applied): ship the source record as it is.
    if (
      first === m &&
      attributes === undefined &&
      src.attributes === undefined &&
      c === src &&
      rec.body === m.text &&
      rec.stream === src.stream &&
      rec.severityNumber === undefined &&
      rec.severityText === undefined &&
      rec.traceId === undefined &&
      rec.spanId === undefined &&
      rec.traceFlags === undefined &&
      !rec.droppedAttributesCount &&
      src.severityNumber === undefined &&
      src.severityText === undefined &&
      src.traceId === undefined &&
      src.spanId === undefined &&
      src.traceFlags === undefined &&
      !src.droppedAttributesCount &&
      !src.commitOnly
    ) {
      this.out.push(src);
      return;
    }
    const out: {
      -readonly [K in keyof LogRecord]: LogRecord[K];
    } = {
      resource: src.resource,
      body: rec.body === first.text && first === m ? src.body : Buffer.from(rec.body, 'utf8'),
      stream: rec.stream,
      timeSec: first.rec.timeSec,
      timeNanos: first.rec.timeNanos,
      observedMs: src.observedMs,
    };
    if (attributes) out.attributes = attributes;
    if (src.source !== undefined) out.source = src.source;
    if (c?.pos) out.pos = c.pos;
    if (c?.apiCursor) out.apiCursor = c.apiCursor;
    if (rec.severityNumber !== undefined) out.severityNumber = rec.severityNumber;
    if (rec.severityText !== undefined) out.severityText = rec.severityText;
    if (rec.traceId !== undefined) out.traceId = rec.traceId;
    if (rec.spanId !== undefined) out.spanId = rec.spanId;
    if (rec.traceFlags !== undefined) out.traceFlags = rec.traceFlags;
    if (rec.droppedAttributesCount) out.droppedAttributesCount = rec.droppedAttributesCount;
    this.out.push(out);
  }

  private dropped(rec: ProcessableRecord<Meta>): void {
    const m = rec.meta!;
    const rank = this.emittedRank;
    const c = this.commitFor(m);
    if (!c || this.emittedRank === rank) return; // nothing new to commit
    this.pushMarker(m.rec, c);
  }

  private pushMarker(r: LogRecord, c: Commit): void {
    const marker: LogRecord = {
      resource: r.resource,
      body: EMPTY,
      stream: r.stream,
      timeSec: r.timeSec,
      timeNanos: r.timeNanos,
      observedMs: r.observedMs,
      commitOnly: true,
      ...(r.source !== undefined ? { source: r.source } : {}),
      ...(c.pos ? { pos: c.pos } : {}),
      ...(c.apiCursor ? { apiCursor: c.apiCursor } : {}),
    };
    if (this.out.pushCommit) this.out.pushCommit(marker);
    else this.out.push(marker);
  }
}
