// OTLP logs protobuf (ExportLogsServiceRequest) encoded straight from the pipeline's records:
// bodies are copied as bytes, resources and the constant attributes are encoded once; a run of
// lines the tailer encoded already (src/logs/run.ts) is copied as it is. The library serializer
// (@opentelemetry/otlp-transformer) is the reference in the unit tests.
import { IOSTREAM_FIELD, hiLo, nanosHiLoInto, varintLen } from '../logs/otlp-wire.js';
import { bodyBytes, writeBody } from '../logs/record.js';
import { LineRun, type BatchItem } from '../logs/run.js';
import type { LogRecord, LogResource } from '../logs/types.js';
import { VERSION } from '../version.js';

export const SCOPE_NAME = 'harbormaster';

/** Minimal protobuf writer into a pre-sized buffer. */
class Writer {
  pos = 0;
  /** A DataView of buf, made when the first body is written (body copies). */
  private dv: DataView | undefined = undefined;
  constructor(readonly buf: Buffer) {}
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  /**
   * A body: bytes as they are (a body range copied straight from the decoder's slab), text
   * encoded in place (len from bodyBytes).
   */
  body(r: LogRecord, len: number): void {
    const b = this.buf;
    this.dv ??= new DataView(b.buffer, b.byteOffset, b.length);
    writeBody(r, b, this.pos, len, this.dv);
    this.pos += len;
  }
  bytes(b: Buffer): void {
    // TypedArray#set: a plain memmove (Buffer#copy builds a view per call).
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  fixed64(lo: number, hi: number): void {
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = lo & 0xff;
    buf[p++] = (lo >>> 8) & 0xff;
    buf[p++] = (lo >>> 16) & 0xff;
    buf[p++] = lo >>> 24;
    buf[p++] = hi & 0xff;
    buf[p++] = (hi >>> 8) & 0xff;
    buf[p++] = (hi >>> 16) & 0xff;
    buf[p++] = hi >>> 24;
    this.pos = p;
  }
  /** fixed64 of sec * 1e9 + nanos (see nanosHiLoInto), without an intermediate array. */
  fixed64Nanos(sec: number, nanos: number): void {
    nanosHiLoInto(sec, nanos);
    this.fixed64(hiLo.lo >>> 0, hiLo.hi >>> 0);
  }
}

/** Length-delimited field: tag, length, payload. */
function ld(field: number, payload: Buffer): Buffer {
  const w = new Writer(Buffer.alloc(1 + varintLen(payload.length) + payload.length));
  w.byte((field << 3) | 2);
  w.varint(payload.length);
  w.bytes(payload);
  return w.buf;
}

function str(field: number, s: string): Buffer {
  return ld(field, Buffer.from(s, 'utf8'));
}

type AttrValue = string | boolean | number | readonly string[];

function anyValue(v: AttrValue): Buffer {
  if (typeof v === 'string') return str(1, v);
  if (typeof v === 'boolean') return Buffer.from([0x10, v ? 1 : 0]);
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      // int64 varint; negative (and beyond 2^53) values as 64-bit two's complement, like protobufjs
      const w = new Writer(Buffer.alloc(11));
      w.byte(0x18);
      if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) w.varint(v);
      else {
        let u = BigInt.asUintN(64, BigInt(v));
        while (u >= 0x80n) {
          w.byte(Number(u & 0x7fn) | 0x80);
          u >>= 7n;
        }
        w.byte(Number(u));
      }
      return w.buf.subarray(0, w.pos);
    }
    const b = Buffer.alloc(9);
    b[0] = 0x21;
    b.writeDoubleLE(v, 1);
    return b;
  }
  // array of strings
  return ld(5, Buffer.concat(v.map((s) => ld(1, str(1, s)))));
}

/** One KeyValue as a repeated field `field` (tag included). */
export function keyValue(field: number, key: string, v: AttrValue): Buffer {
  return ld(field, Buffer.concat([str(1, key), ld(2, anyValue(v))]));
}

/** ResourceLogs.resource field (tag 1), cached on the resource. */
function resourceField(r: LogResource): Buffer {
  if (!r.encoded) {
    const attrs = Object.entries(r.attributes).map(([k, v]) => keyValue(1, k, v));
    r.encoded = ld(1, Buffer.concat(attrs));
  }
  return r.encoded;
}

const SCOPE_FIELD = ld(1, Buffer.concat([str(1, SCOPE_NAME), str(2, VERSION)]));

const NO_IOSTREAM = Buffer.alloc(0);
/** log.iostream of a record: none for an event record (not a line of a container's output). */
function iostream(r: LogRecord): Buffer {
  return r.eventName === undefined ? IOSTREAM_FIELD[r.stream] : NO_IOSTREAM;
}

function varintField(tag: number, n: number): Buffer {
  const w = new Writer(Buffer.alloc(1 + varintLen(n)));
  w.byte(tag);
  w.varint(n);
  return w.buf;
}

/** 2n hex digits → n bytes, or undefined when it is not exactly that. */
function hexId(s: string | undefined, n: number): Buffer | undefined {
  if (s === undefined || s.length !== n * 2) return undefined;
  const b = Buffer.from(s, 'hex');
  return b.length === n ? b : undefined;
}

/**
 * Everything of a record besides time, body and log.iostream: attributes, severity, trace
 * context, dropped attribute count (undefined for a plain line: the fast path).
 */
function recordExtra(r: LogRecord): Buffer | undefined {
  if (
    r.attributes === undefined &&
    r.severityNumber === undefined &&
    !r.severityText &&
    !r.droppedAttributesCount &&
    r.traceId === undefined &&
    r.eventName === undefined
  )
    return undefined;
  const parts: Buffer[] = [];
  if (r.attributes) for (const k in r.attributes) parts.push(keyValue(6, k, r.attributes[k]!));
  if (r.severityNumber !== undefined && r.severityNumber > 0)
    parts.push(varintField(0x10, r.severityNumber)); // severity_number = 2
  if (r.severityText) parts.push(str(3, r.severityText));
  if (r.droppedAttributesCount) parts.push(varintField(0x38, r.droppedAttributesCount)); // 7
  const traceId = hexId(r.traceId, 16);
  if (traceId) {
    if (r.traceFlags !== undefined && r.traceFlags !== 0) {
      const f = Buffer.alloc(5); // flags = 8 (fixed32)
      f[0] = 0x45;
      f.writeUInt32LE(r.traceFlags >>> 0, 1);
      parts.push(f);
    }
    parts.push(ld(9, traceId));
    const spanId = hexId(r.spanId, 8);
    if (spanId) parts.push(ld(10, spanId));
  }
  if (r.eventName !== undefined) parts.push(str(12, r.eventName)); // event_name = 12
  return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * Per-record sizes and the resource groups' chains of one encoding, reused from batch to batch
 * (grown when a batch is larger): nothing is allocated per record or per batch for them.
 */
let recLen = new Int32Array(4096);
let bodyLen = new Int32Array(4096);
/** The next record of the same resource, -1 at the end of a group. */
let nextInGroup = new Int32Array(4096);
/** recordExtra of each record (mostly undefined); cleared after each encoding. */
const extras: (Buffer | undefined)[] = [];

/**
 * Encodes an ExportLogsServiceRequest. Records are grouped by resource (in order of first
 * appearance), order within a resource is kept; a run's lines are its bytes, in its place.
 */
export function encodeLogsRequest(
  records: readonly BatchItem[],
  /** Where the request is written (n bytes; the exporter's reused buffer); default a new one. */
  alloc: (n: number) => Buffer = (n) => Buffer.allocUnsafe(n),
): Buffer {
  const n = records.length;
  if (recLen.length < n) {
    const size = Math.max(n, recLen.length * 2);
    recLen = new Int32Array(size);
    bodyLen = new Int32Array(size);
    nextInGroup = new Int32Array(size);
  }
  extras.length = 0; // (also after an encoding that threw)
  // Groups in order of first appearance: a group is its first and last record, chained.
  const groupOf = new Map<LogResource, number>();
  const firsts: number[] = [];
  const lasts: number[] = [];
  const resources: LogResource[] = [];
  for (let i = 0; i < n; i++) {
    const r = records[i]!.resource;
    nextInGroup[i] = -1;
    const g = groupOf.get(r);
    if (g === undefined) {
      groupOf.set(r, firsts.length);
      firsts.push(i);
      lasts.push(i);
      resources.push(r);
    } else {
      nextInGroup[lasts[g]!] = i;
      lasts[g] = i;
    }
  }
  let total = 0;
  const scopeLens: number[] = [];
  const rlLens: number[] = [];
  for (let g = 0; g < firsts.length; g++) {
    let scopeLen = SCOPE_FIELD.length;
    for (let i = firsts[g]!; i >= 0; i = nextInGroup[i]!) {
      const r = records[i]!;
      if (r instanceof LineRun) {
        scopeLen += r.end - r.start;
        continue;
      }
      const bl = bodyBytes(r);
      bodyLen[i] = bl;
      const anyLen = 1 + varintLen(bl) + bl; // AnyValue.string_value
      const ex = recordExtra(r);
      if (ex !== undefined || i < extras.length) extras[i] = ex;
      const len = 9 + 9 + 1 + varintLen(anyLen) + anyLen + iostream(r).length + (ex?.length ?? 0);
      recLen[i] = len;
      scopeLen += 1 + varintLen(len) + len;
    }
    scopeLens.push(scopeLen);
    const rlLen = resourceField(resources[g]!).length + 1 + varintLen(scopeLen) + scopeLen;
    rlLens.push(rlLen);
    total += 1 + varintLen(rlLen) + rlLen;
  }
  const w = new Writer(alloc(total));
  for (let g = 0; g < firsts.length; g++) {
    const rlLen = rlLens[g]!;
    const scopeLen = scopeLens[g]!;
    w.byte(0x0a);
    w.varint(rlLen);
    w.bytes(resourceField(resources[g]!));
    w.byte(0x12);
    w.varint(scopeLen);
    w.bytes(SCOPE_FIELD);
    for (let i = firsts[g]!; i >= 0; i = nextInGroup[i]!) {
      const r = records[i]!;
      if (r instanceof LineRun) {
        w.bytes(r.src.subarray(r.start, r.end));
        continue;
      }
      w.byte(0x12);
      w.varint(recLen[i]!);
      w.byte(0x09);
      w.fixed64Nanos(r.timeSec, r.timeNanos);
      const bl = bodyLen[i]!;
      w.byte(0x2a);
      w.varint(1 + varintLen(bl) + bl);
      w.byte(0x0a);
      w.varint(bl);
      w.body(r, bl);
      w.bytes(iostream(r));
      const ex = i < extras.length ? extras[i] : undefined;
      if (ex) w.bytes(ex);
      const osec = Math.floor(r.observedMs / 1000);
      w.byte(0x59);
      w.fixed64Nanos(osec, (r.observedMs - osec * 1000) * 1_000_000);
    }
  }
  extras.length = 0;
  if (w.pos !== total) throw new Error(`OTLP encoder size mismatch: ${w.pos} != ${total}`);
  return w.buf;
}

/** Time as a decimal nanosecond string (JSON / NDJSON). */
export function nanosString(sec: number, nanos: number): string {
  return (BigInt(sec) * 1_000_000_000n + BigInt(nanos)).toString();
}
