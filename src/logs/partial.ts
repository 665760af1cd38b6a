// Partial-line reassembly, shared by the file tailer and the Engine API reader.
//
// Docker splits lines longer than 16 KiB into partial messages (json-file: records whose `log`
// lacks the trailing "\n"; the API stream: frames without "\n"). Fragments of a stream are
// joined until one completes the line; a line longer than max_line_bytes is cut there (at a UTF-8
// boundary) and flagged; a line whose continuation does not come within flush_ms, or whose source
// stops, is emitted as it is. stdout and stderr are reassembled separately.
//
// Memory: the bytes kept here are reported through hold() to the queue's bound, and a pending
// line keeps the acks of its fragments, so the source never commits past its first fragment.
//
// The file tailer hands a whole line of a stream with nothing pending straight to its record
// (tailer.ts line(), cut at max_line_bytes with utf8CutEnd): only fragments and the lines they
// end come through here.
import { joinAcks, type Ack } from './ack.js';

export interface CompletedLine {
  stream: 'stdout' | 'stderr';
  /** Owned bytes (never a view into a read buffer the source reuses). */
  body: Buffer;
  timeSec: number;
  timeNanos: number;
  attrs: Record<string, string> | undefined;
  /** Cut at max_line_bytes. */
  truncated: boolean;
  ack: Ack | undefined;
}

export interface PartialLinesOptions {
  maxLineBytes: number;
  flushMs: number;
  emit(line: CompletedLine): void;
  /** Bytes held here grew (or shrank, negative) by delta. */
  hold(delta: number): void;
  now?: () => number;
}

interface Pending {
  parts: Buffer[];
  bytes: number;
  truncated: boolean;
  timeSec: number;
  timeNanos: number;
  attrs: Record<string, string> | undefined;
  ack: Ack | undefined;
  lastAt: number;
}

const EMPTY = Buffer.alloc(0);

/** Cuts buf to at most max bytes without splitting a UTF-8 sequence. */
export function utf8Truncate(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  return buf.subarray(0, utf8CutEnd(buf, 0, buf.length, max));
}

/** The end of buf[start, end) cut to at most max bytes without splitting a UTF-8 sequence. */
export function utf8CutEnd(buf: Buffer, start: number, end: number, max: number): number {
  if (end - start <= max) return end;
  let e = start + max;
  while (e > start && ((buf[e] ?? 0) & 0xc0) === 0x80) e--;
  return e;
}

/** b itself, or a copy when it is a view into `chunk` (a read buffer that will be reused). */
export function own(b: Buffer, chunk: ArrayBufferLike | undefined): Buffer {
  if (b.length === 0) return EMPTY;
  if (chunk === undefined || b.buffer !== chunk) return b;
  const c = Buffer.allocUnsafe(b.length);
  b.copy(c);
  return c;
}

/**
 * The bytes a pending line keeps of a fragment: the fragment itself when the source owns it
 * (the file tailer: the decoder copied it out of the read buffer already), a copy when it is a
 * view into `chunk` or when only a cut part of it is kept (what is held is what is counted).
 * A second copy of every fragment was garbage outside the JS heap (16 KiB a fragment) that only
 * a collection frees: most of the peak RSS while 64 KiB lines are shipped.
 */
function keep(part: Buffer, body: Buffer, chunk: ArrayBufferLike | undefined): Buffer {
  return part.length < body.length ? Buffer.from(part) : own(part, chunk);
}

export class PartialLines {
  private readonly pending: { stdout?: Pending; stderr?: Pending } = {};
  private heldBytes = 0;
  private readonly now: () => number;

  constructor(private readonly o: PartialLinesOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Bytes held in pending lines. */
  get held(): number {
    return this.heldBytes;
  }

  /** A line of this stream is being reassembled. */
  isPending(stream: 'stdout' | 'stderr'): boolean {
    return this.pending[stream] !== undefined;
  }

  /** A line of either stream is being reassembled. */
  get anyPending(): boolean {
    return this.pending.stdout !== undefined || this.pending.stderr !== undefined;
  }

  /** Docker time of the pending line of a stream (the API reader starts a new line on a change). */
  pendingTime(stream: 'stdout' | 'stderr'): { sec: number; nanos: number } | undefined {
    const p = this.pending[stream];
    return p && { sec: p.timeSec, nanos: p.timeNanos };
  }

  /**
   * One fragment (complete: it ends the line). `chunk`: the read buffer `body` may be a view of;
   * kept bytes are copied out of it.
   */
  push(
    stream: 'stdout' | 'stderr',
    body: Buffer,
    complete: boolean,
    timeSec: number,
    timeNanos: number,
    attrs: Record<string, string> | undefined,
    ack: Ack | undefined,
    chunk: ArrayBufferLike | undefined,
  ): void {
    const max = this.o.maxLineBytes;
    const p = this.pending[stream];
    if (!p) {
      if (complete) {
        const truncated = body.length > max;
        this.o.emit({
          stream,
          body: own(truncated ? utf8Truncate(body, max) : body, chunk),
          timeSec,
          timeNanos,
          attrs,
          truncated,
          ack,
        });
        return;
      }
      const first = keep(utf8Truncate(body, max), body, chunk);
      this.pending[stream] = {
        parts: [first],
        bytes: first.length,
        truncated: body.length > max,
        timeSec,
        timeNanos,
        attrs,
        ack,
        lastAt: this.now(),
      };
      this.hold(first.length);
      return;
    }
    if (!p.truncated) {
      const room = max - p.bytes;
      if (body.length > room) {
        const cut = utf8Truncate(body, room);
        if (cut.length > 0) p.parts.push(keep(cut, body, chunk));
        p.bytes += cut.length;
        this.hold(cut.length);
        p.truncated = true;
      } else if (body.length > 0) {
        p.parts.push(keep(body, body, chunk));
        p.bytes += body.length;
        this.hold(body.length);
      }
    }
    p.ack = joinAcks(p.ack, ack);
    p.lastAt = this.now();
    if (complete) this.flush(stream);
  }

  /** Emits the pending line of a stream as it is. */
  flush(stream: 'stdout' | 'stderr'): void {
    const p = this.pending[stream];
    if (!p) return;
    this.pending[stream] = undefined;
    const body = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts, p.bytes);
    // From here on the queue counts these bytes (push), no longer the reassembly.
    this.hold(-p.bytes);
    this.o.emit({
      stream,
      body,
      timeSec: p.timeSec,
      timeNanos: p.timeNanos,
      attrs: p.attrs,
      truncated: p.truncated,
      ack: p.ack,
    });
  }

  /** Emits every pending line (the source stopped, was truncated, or finished). */
  flushAll(): void {
    this.flush('stdout');
    this.flush('stderr');
  }

  /** Emits lines whose continuation did not come within flushMs. */
  flushStale(now = this.now()): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const p = this.pending[s];
      if (p && now - p.lastAt >= this.o.flushMs) this.flush(s);
    }
  }

  /** When flushStale() next has work (ms clock); undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const p of [this.pending.stdout, this.pending.stderr])
      if (p && (d === undefined || p.lastAt + this.o.flushMs < d)) d = p.lastAt + this.o.flushMs;
    return d;
  }

  /**
   * Forgets pending lines without emitting them (the source stops: they are read again after a
   * restart, as their acks were never given).
   */
  discard(): void {
    this.pending.stdout = undefined;
    this.pending.stderr = undefined;
    this.hold(-this.heldBytes);
  }

  private hold(delta: number): void {
    if (delta === 0) return;
    this.heldBytes += delta;
    this.o.hold(delta);
  }
}
