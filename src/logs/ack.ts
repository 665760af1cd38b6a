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
// tailer's whole lines: src/logs/record.ts BytesRecord has tracker and seq); the tracker stores
// refs and numbers in arrays that are compacted as the committed run advances.
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

export class AckTracker<R> {
  /** Sequence number of refs[head]. */
  private base = 0;
  private head = 0;
  private refs: R[] = [];
  private ns: number[] = [];
  private acked: boolean[] = [];
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
    const seq = this.base + this.refs.length - this.head;
    this.refs.push(ref);
    // n >= 0 always; a unit that is not a commit point is stored as -1 - n.
    this.ns.push(point ? n : -1 - n);
    this.acked.push(false);
    return seq;
  }

  /** The next tokens' data dates from timeMs (until the next mark). Cheap; once per chunk. */
  mark(timeMs: number): void {
    const seq = this.base + this.refs.length - this.head;
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
    const i = this.head + (seq - this.base);
    if (seq < this.base || i >= this.refs.length) return;
    this.acked[i] = true;
    if (seq !== this.base) return;
    let j = this.head;
    let last = -1;
    while (j < this.refs.length && this.acked[j]) {
      if (this.ns[j]! >= 0) last = j;
      j++;
    }
    if (last >= 0) {
      this.committedRef = this.refs[last];
      this.committedN = this.ns[last]!;
      this.hasCommitted = true;
    }
    this.base += j - this.head;
    this.head = j;
    this.dropMarks();
    if (this.head === this.refs.length) {
      this.refs = [];
      this.ns = [];
      this.acked = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.refs.length) {
      this.refs = this.refs.slice(this.head);
      this.ns = this.ns.slice(this.head);
      this.acked = this.acked.slice(this.head);
      this.head = 0;
    }
    const idle = this.head === this.refs.length;
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
    return this.refs.length - this.head;
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
