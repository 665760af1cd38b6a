// Acknowledgements flow back from the exporter to the source that read a record.
//
// Every source (a file tailer, an Engine API reader) owns one AckTracker. For each unit of source
// data it consumes (a raw json-file line, an API frame that completed a record) it asks the
// tracker for a token that remembers the source position just after that unit. Records carry
// the tokens of the units they were made of (one for a plain line; every fragment of a partial
// line; every line of a multiline group). When a token is acknowledged (delivered, permanently
// rejected, or dropped by a filter) the tracker commits the longest unbroken run of acknowledged
// tokens from the oldest and reports the position of the last one: that is the only rule that
// keeps a checkpoint from passing data still held anywhere (a partial line, a multiline group,
// a batch in flight). Positions are opaque here: (ref, n) pairs the source interprets.
//
// Commit points: a source may mark a unit as not a place to restart from (the file tailer does
// when a line of either stream is being reassembled across it: restarting there would read the
// rest of an already delivered line as a line of its own). The committed position is then the
// last commit point of the acknowledged run; units past it are re-read after a restart.
//
// Cost: one small token object per unit, none where the record is its own token (the file
// tailer's whole lines: src/logs/record.ts BytesRecord has tracker and seq); the tracker keeps
// the outstanding units in a ring (refs in an array, positions in a Float64Array, ack flags in a
// Uint8Array; doubled when full, back to its first size when nothing is outstanding), so a steady
// stream allocates nothing here. (Arrays that grew and were sliced as the run advanced were
// large-object garbage, freed only by a full collection: a tenth of the peak RSS of a busy tailer.)
//
// Age: a source may mark() the time of the data it is about to hand out (once per read chunk, not
// per unit); oldestMarkedMs() is then the time of the mark that covers the oldest token not yet
// committed: the age of the oldest undelivered data (harbormaster_log_oldest_unshipped_seconds),
// at most one chunk older than the exact one.

/** One unit of source data, acknowledged once. Opaque outside this module. */
export interface AckToken {
  readonly tracker: AckTracker<unknown>;
  readonly seq: number;
}

/** What a record carries: the tokens of the source data it was made of. */
export type Ack = AckToken | readonly AckToken[];

/** Acknowledges every token of `a` (delivered, rejected or dropped). Safe to call twice. */
export function acknowledge(a: Ack | undefined): void {
  if (a === undefined) return;
  if (isToken(a)) a.tracker.ack(a.seq);
  else for (const t of a) t.tracker.ack(t.seq);
}

function isToken(a: Ack): a is AckToken {
  return (a as AckToken).tracker !== undefined;
}

/** The tokens of two records as one (a multiline group, reassembled partial lines). */
export function joinAcks(a: Ack | undefined, b: Ack | undefined): Ack | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out: AckToken[] = isToken(a) ? [a] : [...a];
  if (isToken(b)) out.push(b);
  else out.push(...b);
  return out;
}

/** Number of tokens in `a` (tests, accounting). */
export function ackCount(a: Ack | undefined): number {
  if (a === undefined) return 0;
  return isToken(a) ? 1 : a.length;
}

/** First (and idle) size of a tracker's ring. */
const RING_MIN = 64;

export class AckTracker<R> {
  /** Sequence number of the unit in slot head. */
  private base = 0;
  private head = 0;
  /** Units outstanding (slots head, head + 1, … modulo the ring size). */
  private count = 0;
  private refs: (R | undefined)[] = new Array<R | undefined>(RING_MIN).fill(undefined);
  /** Position after each unit; a unit that is not a commit point is stored as -1 - n. */
  private ns = new Float64Array(RING_MIN);
  private acked = new Uint8Array(RING_MIN);
  private committedRef: R | undefined;
  private committedN = 0;
  private hasCommitted = false;
  /** Marks: from token markSeq[i] on, data is as old as markMs[i] (ascending seq). */
  private markSeq: number[] = [];
  private markMs: number[] = [];
  private markHead = 0;

  /**
   * @param onCommit called (synchronously, inside ack) when the committed run moved.
   * @param onIdle called (synchronously, inside ack, after onCommit) when no token is outstanding
   *   any more, even when the last ones were not commit points (so the committed run did not move).
   */
  constructor(
    private readonly onCommit: (ref: R, n: number) => void,
    private readonly onIdle?: () => void,
  ) {}

  /**
   * A unit of source data ending at (ref, n): its token. `point` false: the position after it is
   * not one to restart from (see commit points above).
   */
  next(ref: R, n: number, point = true): AckToken {
    return { tracker: this as AckTracker<unknown>, seq: this.nextSeq(ref, n, point) };
  }

  /**
   * next() without the token object: the sequence number of the unit, for a source whose record
   * is itself the token (the file tailer's BytesRecord carries tracker and seq).
   */
  nextSeq(ref: R, n: number, point = true): number {
    if (this.count === this.refs.length) this.resize(this.refs.length * 2);
    const seq = this.base + this.count;
    const i = (this.head + this.count) & (this.refs.length - 1);
    this.refs[i] = ref;
    // n >= 0 always; a unit that is not a commit point is stored as -1 - n.
    this.ns[i] = point ? n : -1 - n;
    this.acked[i] = 0;
    this.count++;
    return seq;
  }

  /** A ring of `size` slots (a power of two >= count) holding the outstanding units from slot 0. */
  private resize(size: number): void {
    const mask = this.refs.length - 1;
    const refs = new Array<R | undefined>(size).fill(undefined);
    const ns = new Float64Array(size);
    const acked = new Uint8Array(size);
    for (let k = 0; k < this.count; k++) {
      const j = (this.head + k) & mask;
      refs[k] = this.refs[j];
      ns[k] = this.ns[j]!;
      acked[k] = this.acked[j]!;
    }
    this.refs = refs;
    this.ns = ns;
    this.acked = acked;
    this.head = 0;
  }

  /** The next tokens' data dates from timeMs (until the next mark). Cheap; once per chunk. */
  mark(timeMs: number): void {
    const seq = this.base + this.count;
    const last = this.markSeq.length - 1;
    if (last >= this.markHead && this.markSeq[last] === seq) {
      this.markMs[last] = Math.min(this.markMs[last]!, timeMs);
      return;
    }
    this.markSeq.push(seq);
    this.markMs.push(timeMs);
  }

  /**
   * Time (ms since the epoch) of the oldest data handed out and not committed yet, from the
   * marks; undefined when nothing is outstanding or no mark covers it.
   */
  oldestMarkedMs(): number | undefined {
    if (this.outstanding === 0) return undefined;
    const seq = this.markSeq[this.markHead];
    return seq !== undefined && seq <= this.base ? this.markMs[this.markHead] : undefined;
  }

  /** A unit that needs no delivery (malformed, skipped): registered and acknowledged at once. */
  skip(ref: R, n: number, point = true): void {
    this.ack(this.next(ref, n, point).seq);
  }

  ack(seq: number): void {
    const k = seq - this.base;
    if (k < 0 || k >= this.count) return;
    const mask = this.refs.length - 1;
    this.acked[(this.head + k) & mask] = 1;
    if (k !== 0) return;
    // The acknowledged run from the oldest unit: its last commit point is committed.
    let j = 0;
    let last = -1;
    while (j < this.count) {
      const i = (this.head + j) & mask;
      if (this.acked[i] === 0) break;
      if (this.ns[i]! >= 0) last = i;
      j++;
    }
    if (last >= 0) {
      this.committedRef = this.refs[last];
      this.committedN = this.ns[last]!;
      this.hasCommitted = true;
    }
    for (let x = 0; x < j; x++) this.refs[(this.head + x) & mask] = undefined;
    this.base += j;
    this.head = (this.head + j) & mask;
    this.count -= j;
    this.dropMarks();
    const idle = this.count === 0;
    // A tracker that once had many units outstanding gives the ring back when it is idle.
    if (idle && this.refs.length > RING_MIN) this.resize(RING_MIN);
    if (last >= 0) this.onCommit(this.committedRef as R, this.committedN);
    if (idle && this.onIdle && this.outstanding === 0) this.onIdle();
  }

  /** Keeps only the marks that cover token `base` and later ones (the commit advanced). */
  private dropMarks(): void {
    const n = this.markSeq.length;
    while (this.markHead + 1 < n && this.markSeq[this.markHead + 1]! <= this.base) this.markHead++;
    if (this.markHead > 64 && this.markHead * 2 > n) {
      this.markSeq = this.markSeq.slice(this.markHead);
      this.markMs = this.markMs.slice(this.markHead);
      this.markHead = 0;
    }
  }

  /** Tokens handed out and not committed yet. */
  get outstanding(): number {
    return this.count;
  }

  /** The last committed position, if any was. */
  get committed(): { ref: R; n: number } | undefined {
    return this.hasCommitted ? { ref: this.committedRef as R, n: this.committedN } : undefined;
  }
}

/** The sequence numbers of `a` (tests and debugging). */
export function ackSeqs(a: Ack | undefined): number[] {
  if (a === undefined) return [];
  return isToken(a) ? [a.seq] : a.map((t) => t.seq);
}
