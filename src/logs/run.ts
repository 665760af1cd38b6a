// Whole lines of one file, encoded at read time: the tailer's hot path (see README "The path of
// a line"). When no processing stage needs to see a line (the byte checks pass) and the exporter
// writes OTLP protobuf, the tailer does not make a record per line: the json-file decoder copies
// the body into its slab with room around it, and the tailer writes the rest of the line's OTLP
// `LogRecord` there (time, body framing, log.iostream, observed time: frameLine). Consecutive
// lines of one read chunk are one LineRun: a range of the slab holding their encoded
// `ScopeLogs.log_records` fields, one queue entry and one ack unit (its last line's end offset),
// so nothing per line lives until delivery. The exporter's encoder copies a run's bytes as they
// are; exporters that need records (OTLP/JSON, NDJSON) expand it (runRecords). Once a run is
// acknowledged the export loop releases it (releaseRun): a slab that only runs used is reused.
//
// Fields of a run's lines are set here, once: resource (the run's), log.iostream (the stream the
// decoder read), body, time, observed time (the chunk's). A line a stage would change, a fragment,
// a line with Docker `attrs` or over logs.max_line_bytes takes the record path instead.
import type { AckToken, AckTracker } from './ack.js';
import { releaseSlabRun } from './jsonfile.js';
import { IOSTREAM_FIELD, hiLo, nanosHiLoInto, varintLen } from './otlp-wire.js';
import { newRecord } from './record.js';
import type { LogRecord, LogResource } from './types.js';

/** Consecutive whole lines of one source, encoded as ScopeLogs.log_records fields. */
export class LineRun implements AckToken {
  /** The run is its own ack token (one unit: the end of its last line). */
  readonly ack: AckToken = this;
  constructor(
    readonly resource: LogResource,
    /** src[start, end): the encoded records (each `0x12 len LogRecord`). */
    readonly src: Buffer,
    readonly start: number,
    readonly end: number,
    /** Lines in the run. */
    readonly lines: number,
    readonly tracker: AckTracker<unknown>,
    readonly seq: number,
  ) {}
}

/**
 * The run was acknowledged (delivered or rejected, the request answered): its bytes are not read
 * again, and its slab may be reused once every run in it is released (jsonfile.ts).
 */
export function releaseRun(run: LineRun): void {
  releaseSlabRun(run.src);
}

const allowances = new WeakMap<LogResource, number>();

/**
 * Bytes a request spends on a resource besides its lines: the ResourceLogs and ScopeLogs framing,
 * the resource's attributes and the scope (an upper bound). The queue counts it with every run, so
 * a batch of runs of many containers stays within logs.batch_max_bytes (a gRPC receiver refuses
 * messages over its limit, 4 MiB by default).
 */
export function resourceAllowance(r: LogResource): number {
  let n = allowances.get(r);
  if (n === undefined) {
    n = 96;
    for (const [k, v] of Object.entries(r.attributes)) {
      n += 16 + Buffer.byteLength(k);
      if (typeof v === 'string') n += Buffer.byteLength(v);
      else for (const x of v) n += 8 + Buffer.byteLength(x);
    }
    allowances.set(r, n);
  }
  return n;
}

/** A run in the queue bound besides its bytes: one object and one tracker slot for all its lines. */
export const RUN_OVERHEAD = 200;

/** The part of a container's processor the run intake asks (ContainerProcessor). */
export interface ByteChecks {
  /** No stage of its settings needs to see every record. */
  readonly byteChecking: boolean;
  /** No stage would change or drop this body (pairs, pairHits: see RunSink.passes). */
  passesBytes(
    b: Buffer,
    start: number,
    end: number,
    pairs?: Uint16Array,
    pairHits?: number,
  ): boolean;
  /** The pair table of the redaction literals (RunSink.literalPairs). */
  readonly literalPairs?: Uint16Array;
}

/**
 * The run intake of a source whose lines go through a container's processor (the agent's, the
 * benchmark's): runs while the current processor (a reload replaces it) needs no record and its
 * byte checks pass the line; at most a batch's lines, and its bytes less the run's overhead and
 * its resource's share of a request.
 */
export function processorRunSink(o: {
  processor: () => ByteChecks;
  push: (run: LineRun) => void;
  batchRecords: number;
  batchBytes: number;
  resource: LogResource;
}): RunSink {
  return {
    active: () => o.processor().byteChecking,
    passes: (b, start, end, pairs, pairHits) => {
      const p = o.processor();
      return p.byteChecking && p.passesBytes(b, start, end, pairs, pairHits);
    },
    literalPairs: () => o.processor().literalPairs,
    push: o.push,
    maxLines: o.batchRecords,
    maxBytes: Math.max(1, o.batchBytes - RUN_OVERHEAD - resourceAllowance(o.resource)),
  };
}

/** What the queue and the exporters carry: records, and runs of encoded lines. */
export type BatchItem = LogRecord | LineRun;

/** Lines an item stands for (a record is one; multiline groups count as one record). */
export function itemLines(x: BatchItem): number {
  return x instanceof LineRun ? x.lines : 1;
}

/** Records (lines) of a batch. */
export function batchLines(batch: readonly BatchItem[]): number {
  let n = 0;
  for (const x of batch) n += itemLines(x);
  return n;
}

/** Where a source hands runs (present when the exporter encodes protobuf and processing allows). */
export interface RunSink {
  /**
   * Lines may become runs at all now (the source asks once per read chunk): false while a
   * processing stage must see every record (multiline, filters, rate limit). Absent: always.
   */
  active?(): boolean;
  /**
   * True when no processing stage would change or drop this body (bytes of a whole line).
   * pairs, pairHits: the decoder looked every byte pair at an even offset of the body up in pairs
   * (literalPairs() when the chunk started) and ORed the entries (src/logs/jsonfile.ts): 0 means
   * no redaction literal can be in it; -1 or other pairs: not looked up.
   */
  passes(src: Buffer, start: number, end: number, pairs?: Uint16Array, pairHits?: number): boolean;
  /** The redaction literals' pair table the decoder may use (asked once per read chunk). */
  literalPairs?(): Uint16Array | undefined;
  push(run: LineRun): void;
  /** A run holds at most this many lines and bytes (the batch limits: a run is never split). */
  readonly maxLines: number;
  readonly maxBytes: number;
}

const IOSTREAM_BYTES = IOSTREAM_FIELD.stdout.length;
if (IOSTREAM_BYTES !== 26 || IOSTREAM_FIELD.stderr.length !== 26)
  throw new Error('log.iostream field is not 26 bytes');
/** The log.iostream field as six little-endian words and its last two bytes. */
function ioWords(f: Buffer): Int32Array {
  return Int32Array.from(
    [0, 4, 8, 12, 16, 20].map((k) => f.readInt32LE(k)).concat([f[24]!, f[25]!]),
  );
}
const IO_OUT = ioWords(IOSTREAM_FIELD.stdout);
const IO_ERR = ioWords(IOSTREAM_FIELD.stderr);

/** Bytes after the body of a run's line: log.iostream (26) and observed time (9). */
export const TRAILER_BYTES = IOSTREAM_FIELD.stdout.length + 9;

/** Framing of a line with a body of bl bytes: the header's length. */
export function headerBytes(bl: number): number {
  const anyLen = 1 + varintLen(bl) + bl;
  const recLen = 9 + 1 + varintLen(anyLen) + anyLen + TRAILER_BYTES;
  return 1 + varintLen(recLen) + 9 + 1 + varintLen(anyLen) + 1 + varintLen(bl);
}

function putVarint(b: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    b[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[p++] = n;
  return p;
}

function putFixed64(v: DataView, p: number, lo: number, hi: number): void {
  v.setUint32(p, lo, true);
  v.setUint32(p + 4, hi, true);
}

/**
 * Writes one line's framing around its body (already at b[at + h, at + h + bl), h =
 * headerBytes(bl)): the header at `at`, the trailer after the body (the chunk's observed time,
 * `observed` as its 8 bytes). Returns the end of the encoded line.
 */
export function frameLine(
  b: Buffer,
  v: DataView,
  at: number,
  bl: number,
  stream: 'stdout' | 'stderr',
  timeSec: number,
  timeNanos: number,
  observedLo: number,
  observedHi: number,
): number {
  const anyLen = 1 + varintLen(bl) + bl;
  const recLen = 9 + 1 + varintLen(anyLen) + anyLen + IOSTREAM_BYTES + 9;
  let p = at;
  b[p++] = 0x12; // ScopeLogs.log_records
  p = putVarint(b, p, recLen);
  b[p++] = 0x09; // time_unix_nano (fixed64)
  nanosHiLoInto(timeSec, timeNanos);
  putFixed64(v, p, hiLo.lo >>> 0, hiLo.hi >>> 0);
  p += 8;
  b[p++] = 0x2a; // body (AnyValue)
  p = putVarint(b, p, anyLen);
  b[p++] = 0x0a; // string_value
  p = putVarint(b, p, bl);
  p += bl;
  // log.iostream: six words and two bytes (plain stores; TypedArray#set is a call per line)
  const w = stream === 'stdout' ? IO_OUT : IO_ERR;
  v.setInt32(p, w[0]!, true);
  v.setInt32(p + 4, w[1]!, true);
  v.setInt32(p + 8, w[2]!, true);
  v.setInt32(p + 12, w[3]!, true);
  v.setInt32(p + 16, w[4]!, true);
  v.setInt32(p + 20, w[5]!, true);
  b[p + 24] = w[6]!;
  b[p + 25] = w[7]!;
  p += IOSTREAM_BYTES;
  b[p++] = 0x59; // observed_time_unix_nano (fixed64)
  putFixed64(v, p, observedLo, observedHi);
  return p + 8;
}

/** observed time (ms) as the two 32-bit halves of its nanoseconds. */
export function observedHalves(ms: number): { lo: number; hi: number } {
  const sec = Math.floor(ms / 1000);
  nanosHiLoInto(sec, (ms - sec * 1000) * 1_000_000);
  return { lo: hiLo.lo >>> 0, hi: hiLo.hi >>> 0 };
}

function readVarint(b: Buffer, p: number): [number, number] {
  let n = 0;
  let mul = 1;
  for (;;) {
    const c = b[p++]!;
    n += (c & 0x7f) * mul;
    if (c < 0x80) return [n, p];
    mul *= 128;
  }
}

function readNanos(b: Buffer, p: number): { sec: number; nanos: number } {
  const v = b.readBigUInt64LE(p);
  return { sec: Number(v / 1_000_000_000n), nanos: Number(v % 1_000_000_000n) };
}

/**
 * The run's lines as records (OTLP/JSON and NDJSON exporters, tests): the same fields the
 * encoded bytes hold. The records carry no ack (the run is acknowledged as one).
 */
export function runRecords(run: LineRun): LogRecord[] {
  const out: LogRecord[] = [];
  const b = run.src;
  let p = run.start;
  while (p < run.end) {
    if (b[p] !== 0x12) throw new Error('runRecords: not a log_records field');
    const [len, q] = readVarint(b, p + 1);
    const end = q + len;
    let time = { sec: 0, nanos: 0 };
    let observedMs = 0;
    let body: Buffer = Buffer.alloc(0);
    let stream: 'stdout' | 'stderr' = 'stdout';
    let i = q;
    while (i < end) {
      const tag = b[i++]!;
      if (tag === 0x09) {
        time = readNanos(b, i);
        i += 8;
      } else if (tag === 0x59) {
        const t = readNanos(b, i);
        observedMs = t.sec * 1000 + Math.round(t.nanos / 1e6);
        i += 8;
      } else if (tag === 0x2a) {
        const [anyLen, j] = readVarint(b, i);
        const [bl, k] = readVarint(b, j + 1);
        body = b.subarray(k, k + bl);
        i = j + anyLen;
      } else if (tag === 0x32) {
        const [kvLen, j] = readVarint(b, i);
        if (b.subarray(j, j + kvLen).equals(IOSTREAM_FIELD.stderr.subarray(2))) stream = 'stderr';
        i = j + kvLen;
      } else throw new Error(`runRecords: unexpected field tag ${tag}`);
    }
    out.push(newRecord(run.resource, stream, body, time.sec, time.nanos, observedMs, undefined));
    p = end;
  }
  return out;
}

/** Every item of a batch as records (runs expanded). */
export function batchRecords(batch: readonly BatchItem[]): LogRecord[] {
  if (!batch.some((x) => x instanceof LineRun)) return batch as LogRecord[];
  const out: LogRecord[] = [];
  for (const x of batch) {
    if (x instanceof LineRun) for (const r of runRecords(x)) out.push(r);
    else out.push(x);
  }
  return out;
}
