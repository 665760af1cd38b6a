// Birth of a LogRecord (the only place one is constructed from source data) and the body
// helpers every stage uses: text only on demand, byte length without converting.
//
// Two constructors, one set of fields: newRecord (a body that is already a Buffer or text: the
// Engine API reader, intake, tests) and newRecordFromBytes (the file tailer: the body is a range
// of the decoder's body slab, kept as offsets; a Buffer view is made only if a stage reads
// `body`), and the record is the ack token of its line (no token object). The helpers below (bodyRange, bodyBytes, textOf, writeBody) read the range in
// place, so a line that no stage changes costs no view between the tailer and the encoder.
import type { Ack, AckToken, AckTracker } from './ack.js';
import type { AttrValue, LogRecord, LogResource } from './types.js';

export const TRUNCATED_ATTR = 'harbormaster.log.truncated';

const EMPTY = Buffer.alloc(0);

/**
 * A record whose body is src[start, end) until a stage reads or replaces `body` (see the module
 * header). src is never reused or written by the source (the decoder's slab, or a buffer of the
 * line's own), so the range stays valid as long as the record.
 *
 * Kept small (14 slots, 136 bytes on Node.js 20 x64), because records wait in the queue long
 * enough to survive young-generation collections: the fields only parsing and multiline set
 * (severity, trace context, lines…) are not slots of a new record (they read as undefined until a
 * stage sets them), and the observed time in ms is held as two small integers (a field holding
 * 1.7e12 is a separate 16-byte heap number per record; Docker's seconds are a small integer on
 * 64-bit Node.js until 2038).
 */
export class BytesRecord implements LogRecord, AckToken {
  /** The body once it was read as a Buffer or replaced; undefined while it is only the range. */
  private value: Buffer | string | undefined = undefined;
  /** Starts as the record itself (one unit, no token object); stages may join more acks. */
  ack: Ack | undefined = this;
  private readonly obsHi: number;
  private readonly obsLo: number;
  constructor(
    readonly resource: LogResource,
    readonly stream: 'stdout' | 'stderr',
    /** The bytes of the body while it is the range (undefined once a stage replaced it). */
    public src: Buffer | undefined,
    public start: number,
    public end: number,
    readonly timeSec: number,
    readonly timeNanos: number,
    observedMs: number,
    /** The tracker and sequence number of the line: the record is its own ack token. */
    readonly tracker: AckTracker<unknown>,
    readonly seq: number,
    public attributes: Record<string, AttrValue> | undefined,
  ) {
    this.obsHi = Math.floor(observedMs / 1048576);
    this.obsLo = observedMs - this.obsHi * 1048576;
  }

  get observedMs(): number {
    return this.obsHi * 1048576 + this.obsLo;
  }

  get body(): Buffer | string {
    if (this.value === undefined) {
      const src = this.src!;
      this.value =
        this.end === this.start
          ? EMPTY
          : Buffer.from(src.buffer, src.byteOffset + this.start, this.end - this.start);
    }
    return this.value;
  }

  set body(v: Buffer | string) {
    this.value = v;
    this.src = undefined;
  }
}

/**
 * The file tailer's record of one whole line: the body is src[start, end) and the record is the
 * line's ack token (tracker, seq from AckTracker.nextSeq): see BytesRecord.
 */
export function newRecordFromBytes(
  resource: LogResource,
  stream: 'stdout' | 'stderr',
  src: Buffer,
  start: number,
  end: number,
  timeSec: number,
  timeNanos: number,
  observedMs: number,
  tracker: AckTracker<unknown>,
  seq: number,
  attributes?: Record<string, AttrValue>,
): LogRecord {
  return new BytesRecord(
    resource,
    stream,
    src,
    start,
    end,
    timeSec,
    timeNanos,
    observedMs,
    tracker,
    seq,
    attributes,
  );
}

/**
 * The record itself when its body is still a range (src[start, end)): stages that check bytes
 * read them there; undefined when the body is a Buffer or text (read `body`).
 */
export function bodyRange(r: LogRecord): BytesRecord | undefined {
  return r instanceof BytesRecord && r.src !== undefined ? r : undefined;
}

/** The last source buffer writeBody copied from (a body slab: many bodies in a row) and its view. */
let lastSrc: Buffer | undefined;
let lastSrcView: DataView | undefined;

/**
 * Copies the body (bodyBytes(r) bytes, UTF-8) into out at `at` (the protobuf encoder; outView is
 * a DataView of out).
 */
export function writeBody(
  r: LogRecord,
  out: Buffer,
  at: number,
  len: number,
  outView?: DataView,
): void {
  const x = bodyRange(r);
  if (x) {
    const src = x.src!;
    const s = x.start;
    if (outView !== undefined && len <= 256) {
      // Bodies of a usual length eight bytes a step through DataViews (of the slab, made once
      // per slab, and of out): nothing allocated per record, where a Uint8Array view of the
      // range costs a young-generation object per record and about as much CPU as copying 200
      // bytes this way.
      if (src !== lastSrc) {
        lastSrc = src;
        lastSrcView = new DataView(src.buffer, src.byteOffset, src.length);
      }
      const sv = lastSrcView!;
      let i = 0;
      for (; i + 8 <= len; i += 8) {
        outView.setInt32(at + i, sv.getInt32(s + i, true), true);
        outView.setInt32(at + i + 4, sv.getInt32(s + i + 4, true), true);
      }
      for (; i < len; i++) out[at + i] = src[s + i]!;
      return;
    }
    // Longer ones through one plain Uint8Array view (TypedArray#set is a memmove; Buffer#copy of
    // a range makes the same view and more).
    out.set(new Uint8Array(src.buffer, src.byteOffset + s, len), at);
    return;
  }
  const b = r.body;
  if (typeof b === 'string') out.write(b, at, len, 'utf8');
  else out.set(b, at);
}

/** A new record as a source reads it: resource, stream and times are fixed from here on. */
export function newRecord(
  resource: LogResource,
  stream: 'stdout' | 'stderr',
  body: Buffer | string,
  timeSec: number,
  timeNanos: number,
  observedMs: number,
  ack: Ack | undefined,
  attributes?: Record<string, AttrValue>,
): LogRecord {
  // One shape for every record (hidden class): optional fields present as undefined.
  return {
    resource,
    stream,
    body,
    timeSec,
    timeNanos,
    observedMs,
    attributes,
    severityNumber: undefined,
    severityText: undefined,
    traceId: undefined,
    spanId: undefined,
    traceFlags: undefined,
    droppedAttributesCount: undefined,
    lines: undefined,
    eventName: undefined,
    ack,
  };
}

/**
 * The body as text. A Buffer body is decoded for the caller and left as it is: a stage that only
 * reads the text (filters, a parser that finds nothing, redaction that masks nothing) does not
 * change what the encoder copies; a stage that changes the text stores a string.
 */
export function textOf(r: LogRecord): string {
  const x = bodyRange(r);
  if (x) return x.src!.toString('utf8', x.start, x.end);
  return typeof r.body === 'string' ? r.body : r.body.toString('utf8');
}

/** UTF-8 byte length of the body. */
export function bodyBytes(r: LogRecord): number {
  const x = bodyRange(r);
  if (x) return x.end - x.start;
  return typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.length;
}

/** Docker's timestamp as bigint nanoseconds (JSON / NDJSON output). */
export function timeUnixNano(r: LogRecord): bigint {
  return BigInt(r.timeSec) * 1_000_000_000n + BigInt(r.timeNanos);
}
