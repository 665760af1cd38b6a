// Decoder of Docker's json-file records: {"log":"...\n","stream":"stdout","attrs":{...},"time":"..."}
//
// Hot path: most records have the exact layout Docker writes. One byte scanner finds the end of the
// `log` string, unescapes it (\n \" \\ \t …) and copies it out (no UTF-8 decode, no JSON.parse,
// one copy; UTF-8 validation only for non-ASCII bodies). It moves four bytes at a time (DataView
// words and bit tricks) through runs without a quote, backslash or control character, and byte
// by byte only around those: about a third less CPU per line than a plain byte loop. Long strings whose only escape is the
// trailing `\n` are found with indexOf and copied in one go. Anything else (\uXXXX escapes, other
// key order, attrs, whitespace, long strings with escapes) falls back to JSON.parse.
//
// The tailer calls decodeJsonFileLineInto with one result object it reuses, and gets the body as
// a range of a buffer nobody reuses (a slab of bodies, see below): no object and no Buffer view per
// line. decodeJsonFileLine (tests, tools) is the same decoder returning a new object with a body view.
// For runs of encoded lines (src/logs/run.ts) the tailer asks for room before and after the body
// in the slab (`reserve`, `after`; out.framed) and writes the OTLP framing of the line there.
// That body loop runs in WebAssembly (src/logs/wasm/json-body.wat, sixteen bytes a step) when the
// read chunk and the slab are in its memory (decoderReadBuffer, the slabs of run bodies); the
// JavaScript loop below does the same for everything else.
import { isUtf8 } from 'node:buffer';
import { JSON_BODY_WASM } from './wasm/json-body.js';

export interface DecodedLine {
  /** Body bytes without the trailing newline (never a view into the read buffer). */
  body: Buffer;
  /** False for Docker's partial records (no trailing newline: the line continues). */
  complete: boolean;
  stream: 'stdout' | 'stderr';
  timeSec: number;
  timeNanos: number;
  attrs?: Record<string, string>;
}

/**
 * A decoded record as decodeJsonFileLineInto fills it (one object, reused line after line): the
 * body is src[start, end), bytes of a buffer that is never reused or written again (a body slab,
 * or a buffer of its own), so a record may keep the range.
 */
export interface DecodedBytes {
  src: Buffer;
  start: number;
  end: number;
  complete: boolean;
  stream: 'stdout' | 'stderr';
  timeSec: number;
  timeNanos: number;
  attrs: Record<string, string> | undefined;
  /**
   * The body is in the slab with the room asked for around it (decodeJsonFileLineInto's
   * `reserve` bytes before, `after` bytes after, both free for the caller to write: src/logs/run.ts).
   */
  framed: boolean;
  /** Where the record ends (its newline), as decodeJsonFileLineInto found or was given it. */
  recordEnd: number;
  /**
   * Set by the caller: a pair table (ByteLiterals.pairsLE in src/logs/processing/redact.ts) to
   * look the body's byte pairs up in while it is copied.
   */
  pairs: Uint16Array | undefined;
  /**
   * The OR of pairs' entries for every pair at an even offset of the body (0: none of its
   * literals is in the body); -1 when not looked up (no table, or a path other than the copy loop).
   */
  pairHits: number;
}

/** A result object for decodeJsonFileLineInto. */
export function decodedBytes(): DecodedBytes {
  return {
    src: EMPTY,
    start: 0,
    end: 0,
    complete: false,
    stream: 'stdout',
    timeSec: 0,
    timeNanos: 0,
    attrs: undefined,
    framed: false,
    recordEnd: 0,
    pairs: undefined,
    pairHits: -1,
  };
}

const PREFIX = Buffer.from('{"log":"');
/** PREFIX as two little-endian 32-bit words (compared as such on the fast path). */
const PREFIX_W0 = PREFIX.readInt32LE(0);
const PREFIX_W1 = PREFIX.readInt32LE(4);
/**
 * Length of the last time string whose end was searched for (unknown-end decodes): the next
 * record's `"}` and newline are looked for there first. Docker's times vary in length (trailing
 * zeros of the fraction are dropped): a miss costs the scan it replaces.
 */
let lastTimeLen = 30;
const STREAM_KEY = Buffer.from('","stream":"');
const TIME_KEY = Buffer.from('","time":"');
const Q = 0x22;
const BS = 0x5c;
const STDOUT = Buffer.from('stdout');
const STDERR = Buffer.from('stderr');
/** The keys between the log string and the time, as seven little-endian 32-bit words. */
function keyWords(stream: string): Int32Array {
  const b = Buffer.from(`","stream":"${stream}","time":"`);
  return Int32Array.from({ length: 7 }, (_, k) => b.readInt32LE(k * 4));
}
const KEYS_OUT = keyWords('stdout');
const KEYS_ERR = keyWords('stderr');
const KEYS_BYTES = 28;
const EMPTY = Buffer.alloc(0);

function startsWithAt(buf: Buffer, at: number, what: Buffer): boolean {
  if (at + what.length > buf.length) return false;
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false;
  return true;
}

function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function dig(buf: Buffer, i: number): number {
  const c = (buf[i] ?? 0) - 48;
  return c >= 0 && c <= 9 ? c : NaN;
}

/** The last valid seconds prefix parseTimeBytes saw (19 bytes) and its seconds. */
const lastPrefix = new Uint8Array(20);
/** lastPrefix as four 32-bit words (and three bytes): compared word by word when a view is given. */
const lastPrefixView = new DataView(lastPrefix.buffer);
let lastBase = 0;
let lastValid = false;

const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/** Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` at buf[start] (UTC); undefined: not one. */
function parsePrefix(buf: Buffer, start: number): number | undefined {
  const y =
    dig(buf, start) * 1000 +
    dig(buf, start + 1) * 100 +
    dig(buf, start + 2) * 10 +
    dig(buf, start + 3);
  const mo = dig(buf, start + 5) * 10 + dig(buf, start + 6);
  const d = dig(buf, start + 8) * 10 + dig(buf, start + 9);
  const h = dig(buf, start + 11) * 10 + dig(buf, start + 12);
  const mi = dig(buf, start + 14) * 10 + dig(buf, start + 15);
  const s = dig(buf, start + 17) * 10 + dig(buf, start + 18);
  if (
    buf[start + 4] !== 0x2d ||
    buf[start + 7] !== 0x2d ||
    (buf[start + 10] !== 0x54 && buf[start + 10] !== 0x74 && buf[start + 10] !== 0x20) ||
    buf[start + 13] !== 0x3a ||
    buf[start + 16] !== 0x3a
  )
    return undefined;
  if (!(y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60))
    return undefined;
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

/**
 * Parses RFC 3339 with up to 9 fraction digits (`2024-05-01T12:34:56.123456789Z`, or with a
 * numeric offset) from buf[start, end). Returns false when it is not such a timestamp.
 * `view`: a DataView of buf (the decoder's), for comparing the seconds prefix a word at a time.
 */
/** A little-endian word of four ASCII digits. */
function digits4(w: number): boolean {
  return (w & 0xf0f0f0f0) === 0x30303030 && ((w + 0x06060606) & 0xf0f0f0f0) === 0x30303030;
}

/** The number four ASCII digits (a little-endian word, the first digit in the low byte) spell. */
function value4(w: number): number {
  const d = w & 0x0f0f0f0f;
  const v = (Math.imul(d, 10) + (d >>> 8)) & 0x00ff00ff; // two-digit pairs in bytes 0 and 2
  return (v & 0xff) * 100 + (v >>> 16);
}

export function parseTimeBytes(
  buf: Buffer,
  start: number,
  end: number,
  out: { sec: number; nanos: number },
  view?: DataView,
): boolean {
  if (end - start < 20) return false;
  // Lines come many to a second: the seconds of the last `YYYY-MM-DDTHH:MM:SS` prefix are kept
  // and reused while the prefix is the same (compares instead of parsing and checking).
  let base: number;
  let same = lastValid;
  if (view !== undefined) {
    const p = lastPrefixView;
    same &&=
      view.getInt32(start, true) === p.getInt32(0, true) &&
      view.getInt32(start + 4, true) === p.getInt32(4, true) &&
      view.getInt32(start + 8, true) === p.getInt32(8, true) &&
      view.getInt32(start + 12, true) === p.getInt32(12, true) &&
      buf[start + 16] === lastPrefix[16] &&
      buf[start + 17] === lastPrefix[17] &&
      buf[start + 18] === lastPrefix[18];
  } else
    for (let k = 0; same && k < 19; k++)
      if (buf[start + k] !== lastPrefix[k]) {
        same = false;
        break;
      }
  if (same) base = lastBase;
  else {
    const b = parsePrefix(buf, start);
    if (b === undefined) return false;
    base = b;
    for (let k = 0; k < 19; k++) lastPrefix[k] = buf[start + k]!;
    lastBase = b;
    lastValid = true;
  }
  let i = start + 19;
  let nanos = 0;
  if (buf[i] === 0x2e) {
    // Up to nine digits count (nanoseconds), any more are read and ignored.
    const f = ++i;
    // The first eight digits as two words when they are digits (Docker's usual nine).
    if (view !== undefined && i + 8 <= end) {
      const w1 = view.getInt32(i, true);
      const w2 = view.getInt32(i + 4, true);
      if (digits4(w1) && digits4(w2)) {
        nanos = value4(w1) * 10000 + value4(w2);
        i += 8;
      }
    }
    while (i < end) {
      const c = (buf[i] ?? 0) - 48;
      if (c < 0 || c > 9) break;
      if (i - f < 9) nanos = nanos * 10 + c;
      i++;
    }
    const n = i - f;
    if (n === 0) return false;
    if (n < 9) nanos *= POW10[9 - n]!;
  }
  let offsetSec = 0;
  const z = buf[i];
  if ((z === 0x5a || z === 0x7a) && i + 1 === end) {
    // UTC
  } else if ((z === 0x2b || z === 0x2d) && i + 6 === end && buf[i + 3] === 0x3a) {
    const oh = dig(buf, i + 1) * 10 + dig(buf, i + 2);
    const om = dig(buf, i + 4) * 10 + dig(buf, i + 5);
    if (Number.isNaN(oh) || Number.isNaN(om)) return false;
    offsetSec = (z === 0x2b ? 1 : -1) * (oh * 3600 + om * 60);
  } else return false;
  out.sec = base - offsetSec;
  out.nanos = nanos;
  return true;
}

const tmpTime = { sec: 0, nanos: 0 };

/** The one place a decoded record is written (both paths); the time is tmpTime's. */
function fill(
  out: DecodedBytes,
  src: Buffer,
  start: number,
  end: number,
  complete: boolean,
  stream: 'stdout' | 'stderr',
  attrs: Record<string, string> | undefined,
  framed = false,
): void {
  out.framed = framed;
  out.src = src;
  out.start = start;
  out.end = end;
  out.complete = complete;
  out.stream = stream;
  out.timeSec = tmpTime.sec;
  out.timeNanos = tmpTime.nanos;
  out.attrs = attrs;
  out.pairHits = -1;
}

function slowPath(buf: Buffer, start: number, end: number, out: DecodedBytes): boolean {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8', start, end));
  } catch {
    return false;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.log !== 'string' || typeof o.time !== 'string') return false;
  const stream = o.stream === 'stderr' ? 'stderr' : o.stream === 'stdout' ? 'stdout' : undefined;
  if (!stream) return false;
  const tb = Buffer.from(o.time, 'latin1');
  if (!parseTimeBytes(tb, 0, tb.length, tmpTime)) {
    const ms = Date.parse(o.time);
    if (!Number.isFinite(ms)) return false;
    tmpTime.sec = Math.floor(ms / 1000);
    tmpTime.nanos = (ms - tmpTime.sec * 1000) * 1_000_000;
  }
  const complete = o.log.endsWith('\n');
  const body = Buffer.from(complete ? o.log.slice(0, -1) : o.log, 'utf8');
  let attrs: Record<string, string> | undefined;
  if (o.attrs !== null && typeof o.attrs === 'object' && !Array.isArray(o.attrs)) {
    for (const [k, val] of Object.entries(o.attrs as Record<string, unknown>)) {
      if (typeof val === 'string') (attrs ??= {})[k] = val;
    }
  }
  fill(out, body, 0, body.length, complete, stream, attrs);
  return true;
}

// Bodies outlive the read buffer, so they are copied out while the `log` string is scanned (and
// unescaped). Small bodies share slabs: one ArrayBuffer per SLAB_BYTES of bodies instead of one
// allocation per line; a slab lives as long as a body in it (records are short-lived: FIFO queue).
const SLAB_BYTES = 64 * 1024;
const SLAB_PIECE_MAX = 4096;
let slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabView: DataView = new DataView(slab.buffer, slab.byteOffset, slab.length);
let slabPos = 0;

// Slabs that only runs of encoded lines used (src/logs/run.ts) are reused once every run in them
// is acknowledged: with runs hardly anything is allocated per line, so the garbage collector runs
// rarely and dead slabs (promoted while their runs waited) would pile up outside the heap until a
// full collection. A slab any other body used (a record's range, a fragment) is never reused.
/**
 * Runs not yet released per slab that runs used: n > 0 for the current slab, -n once the decoder
 * moved on (retired). A slab that had another body is not in the map (tainted: never reused).
 */
const slabRuns = new Map<Buffer, number>();
/** The current slab had a body that is not part of a run. */
let slabTainted = false;
const freeSlabs: Buffer[] = [];
const FREE_SLABS_MAX = 64;
/** Slabs allocated and slabs reused since start (tests, benchmarks). */
const slabCount = { allocated: 1, reused: 0 };

export function slabCounts(): { allocated: number; reused: number } {
  return { ...slabCount };
}

// The body loop in WebAssembly (src/logs/wasm/json-body.wat; SIMD, sixteen bytes a step, the
// redaction pair look-up over what it wrote): it runs where the read chunk and the body slab are
// both in its memory, which holds the read buffers of the tailers' usual size (decoderReadBuffer)
// and slabs for bodies that get room for framing (runs, src/logs/run.ts). Everything else (other
// read sizes, a gz generation's buffers, bodies of records, the memory's slabs all in use, no
// WebAssembly) takes the JavaScript loop, which decides the same (wasm-body.test.ts). The memory
// is sized once and never grown: growing would detach every view into it. A wasm slab never holds
// a record's body (a record's decode moves to a JavaScript slab first), so it is always reusable
// once its runs are acknowledged; read buffers go back when their chunk was consumed.
const WASM_RES = 128 * 1024;
const READ_SLOT = 256 * 1024;
const READ_SLOTS = 4;
const READ_BASE = 256 * 1024;
const WASM_SLAB_BASE = READ_BASE + READ_SLOTS * READ_SLOT;
const WASM_SLABS = 256;

interface WasmBody {
  ab: ArrayBuffer;
  body: (i: number, lim: number, o: number, pairs: number, known: number) => number;
  /** The results of the last call (see json-body.wat). */
  res: Int32Array;
  /** The pair table body() looks pairs up in: a copy of `tableOf`. */
  table: Uint16Array;
  tableOf: Uint16Array | undefined;
  freeReads: number[];
  freeSlabs: Buffer[];
}

/** The part of the WebAssembly JS API used here (the agent's TypeScript lib has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

function loadWasm(): WasmBody | undefined {
  try {
    const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    if (api === undefined) return undefined;
    const inst = new api.Instance(new api.Module(Buffer.from(JSON_BODY_WASM, 'base64')));
    const mem = inst.exports.mem as { buffer: ArrayBuffer; grow(pages: number): number };
    const pages = Math.ceil((WASM_SLAB_BASE + WASM_SLABS * SLAB_BYTES) / 65536);
    mem.grow(pages - mem.buffer.byteLength / 65536);
    const ab = mem.buffer;
    return {
      ab,
      body: inst.exports.body as WasmBody['body'],
      res: new Int32Array(ab, WASM_RES, 6),
      table: new Uint16Array(ab, 0, 65536),
      tableOf: undefined,
      freeReads: Array.from({ length: READ_SLOTS }, (_, k) => READ_SLOTS - 1 - k),
      freeSlabs: Array.from({ length: WASM_SLABS }, (_, k) =>
        Buffer.from(ab, WASM_SLAB_BASE + (WASM_SLABS - 1 - k) * SLAB_BYTES, SLAB_BYTES),
      ),
    };
  } catch {
    // No WebAssembly (or no SIMD): the JavaScript loop does all.
    return undefined;
  }
}
const wasm = loadWasm();
// The function and its results as module constants: a call target the optimizing compiler sees
// as one function (a property load per line made it a generic call).
const wasmBody = wasm?.body;
const wasmRes = wasm?.res ?? new Int32Array(6);
/** The current slab is one of the WebAssembly memory's. */
let slabIsWasm = false;
const usedWasmSlabs = new WeakSet<Buffer>();

/** b is a view of the WebAssembly memory. */
function inWasm(b: Buffer): boolean {
  return wasm !== undefined && b.buffer === wasm.ab;
}

/** Bodies the WebAssembly loop decoded since start (tests, benchmarks); -1: no WebAssembly. */
let wasmBodies = 0;
export function wasmDecodes(): number {
  return wasm === undefined ? -1 : wasmBodies;
}

/**
 * A read buffer of `size` bytes in the decoder's WebAssembly memory (where the body loop runs),
 * or undefined (too large, all in use, no WebAssembly). Give it back with releaseDecoderReadBuffer
 * once its chunk is consumed; nothing may keep a view of it.
 */
export function decoderReadBuffer(size: number): Buffer | undefined {
  if (wasm === undefined || size > READ_SLOT) return undefined;
  const k = wasm.freeReads.pop();
  return k === undefined ? undefined : Buffer.from(wasm.ab, READ_BASE + k * READ_SLOT, size);
}

/** Takes back a buffer of decoderReadBuffer; false for any other buffer. */
export function releaseDecoderReadBuffer(buf: Buffer): boolean {
  if (wasm === undefined || !inWasm(buf)) return false;
  wasm.freeReads.push((buf.byteOffset - READ_BASE) / READ_SLOT);
  return true;
}

/** A slab can be reused: back to its own kind's list. */
function freeSlab(b: Buffer): void {
  if (wasm !== undefined && inWasm(b)) wasm.freeSlabs.push(b);
  else if (freeSlabs.length < FREE_SLABS_MAX) freeSlabs.push(b);
}

/** The next slab: one of the WebAssembly memory's for a run body (`run`) when one is free. */
function nextSlab(run = false): void {
  const old = slab;
  const refs = slabRuns.get(old) ?? 0;
  slabRuns.delete(old);
  if (!slabTainted) {
    if (refs > 0) slabRuns.set(old, -refs);
    else freeSlab(old);
  }
  const reuse = (run ? wasm?.freeSlabs.pop() : undefined) ?? freeSlabs.pop();
  slab = reuse ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
  slabIsWasm = inWasm(slab);
  // A WebAssembly slab counts as allocated the first time it is used.
  if (reuse === undefined || (slabIsWasm && !usedWasmSlabs.has(slab))) slabCount.allocated++;
  else slabCount.reused++;
  if (slabIsWasm) usedWasmSlabs.add(slab);
  slabTainted = false;
  slabView = new DataView(slab.buffer, slab.byteOffset, slab.length);
  slabPos = 0;
}

/**
 * A run starts in src (the current slab, right after its first line was decoded into it): src is
 * reused only after releaseSlabRun for it.
 */
export function holdSlabRun(src: Buffer): void {
  if (src !== slab || slabTainted) return;
  slabRuns.set(src, (slabRuns.get(src) ?? 0) + 1);
}

/** A run in src was acknowledged: its bytes are not read any more (the request was answered). */
export function releaseSlabRun(src: Buffer): void {
  const refs = slabRuns.get(src);
  if (refs === undefined) return;
  if (refs > 0) slabRuns.set(src, refs - 1);
  else if (refs < -1) slabRuns.set(src, refs + 1);
  else if (refs === -1) {
    // retired, and this was its last run
    slabRuns.delete(src);
    freeSlab(src);
  }
}

// The tailer's usual decodes (room for framing, a chunk in the WebAssembly memory) start on a
// WebAssembly slab, so the optimizing compiler sees that path from the first line.
if (wasm !== undefined) nextSlab(true);

/** A DataView of the last buffer decoded from (the tailer's read chunk): word reads. */
let lastBuf: Buffer | undefined;
let lastView: DataView = slabView;
/** lastBuf is in the WebAssembly memory. */
let lastInWasm = false;

/** After the `log` string (closing quote at q): stream, time, end of record; undefined: no match. */
function finishFast(
  buf: Buffer,
  end: number,
  q: number,
  out: DecodedBytes,
  src: Buffer,
  bodyStart: number,
  bodyEnd: number,
  complete: boolean,
  view?: DataView,
  framed = false,
): boolean {
  let stream: 'stdout' | 'stderr';
  const ts = q + KEYS_BYTES;
  if (view !== undefined && ts <= end) {
    // `","stream":"stdout","time":"` (or stderr) as seven 32-bit words.
    if (
      view.getInt32(q, true) !== KEYS_OUT[0] ||
      view.getInt32(q + 4, true) !== KEYS_OUT[1] ||
      view.getInt32(q + 8, true) !== KEYS_OUT[2] ||
      view.getInt32(q + 20, true) !== KEYS_OUT[5] ||
      view.getInt32(q + 24, true) !== KEYS_OUT[6]
    )
      return false;
    const w3 = view.getInt32(q + 12, true);
    const w4 = view.getInt32(q + 16, true);
    if (w3 === KEYS_OUT[3] && w4 === KEYS_OUT[4]) stream = 'stdout';
    else if (w3 === KEYS_ERR[3] && w4 === KEYS_ERR[4]) stream = 'stderr';
    else return false;
  } else {
    if (!startsWithAt(buf, q, STREAM_KEY)) return false;
    const st = q + STREAM_KEY.length;
    if (startsWithAt(buf, st, STDOUT)) stream = 'stdout';
    else if (startsWithAt(buf, st, STDERR)) stream = 'stderr';
    else return false;
    if (!startsWithAt(buf, st + 6, TIME_KEY)) return false;
  }
  // The record ends with `"}` (Docker writes no whitespace).
  if (buf[end - 1] !== 0x7d || buf[end - 2] !== Q) return false;
  if (!parseTimeBytes(buf, ts, end - 2, tmpTime, view)) return false;
  fill(out, src, bodyStart, bodyEnd, complete, stream, undefined, framed);
  return true;
}

/**
 * A long `log` string (a 16 KiB partial record, say): found with indexOf and copied in one go
 * when its only escape is the trailing `\n`; anything else goes to JSON.parse.
 */
function decodeLong(
  buf: Buffer,
  start: number,
  end: number,
  s: number,
  out: DecodedBytes,
): boolean {
  const q = buf.indexOf(Q, s);
  if (q < 0 || q >= end) return slowPath(buf, start, end, out);
  const b = buf.indexOf(BS, s);
  let bodyEnd: number;
  let complete: boolean;
  if (b < 0 || b > q) {
    bodyEnd = q;
    complete = false;
  } else if (b === q - 2 && buf[b + 1] === 0x6e) {
    bodyEnd = b;
    complete = true;
  } else return slowPath(buf, start, end, out);
  const view = buf.subarray(s, bodyEnd);
  // Protobuf strings must be valid UTF-8; Docker always writes valid UTF-8, a corrupt file might not.
  if (!isUtf8(view)) return slowPath(buf, start, end, out);
  const body = view.length === 0 ? EMPTY : Buffer.allocUnsafeSlow(view.length);
  body.set(view);
  return (
    finishFast(buf, end, q, out, body, 0, body.length, complete) || slowPath(buf, start, end, out)
  );
}

/**
 * Decodes one json-file record in buf[start, end) (without the newline). Returns undefined for a
 * malformed record (caller counts and skips it). The body never refers to buf.
 */
export function decodeJsonFileLine(
  buf: Buffer,
  start: number,
  end: number,
): DecodedLine | undefined {
  const d = decodedBytes();
  if (!decodeJsonFileLineInto(buf, start, end, d)) return undefined;
  const body = d.end === d.start ? EMPTY : d.src.subarray(d.start, d.end);
  const out: DecodedLine = {
    body,
    complete: d.complete,
    stream: d.stream,
    timeSec: d.timeSec,
    timeNanos: d.timeNanos,
  };
  if (d.attrs) out.attrs = d.attrs;
  return out;
}

/**
 * The slab's next free byte is `at`: after the caller moved the last framed body within its room
 * (src/logs/run.ts). Only right after a framed decode into `src`; the room asked for covers it
 * (see decodeJsonFileLineInto).
 */
export function slabEndAt(src: Buffer, at: number): void {
  if (src === slab && at <= SLAB_BYTES) slabPos = at;
}

/**
 * decodeJsonFileLine into `out` (reused by the caller): false for a malformed record. The body
 * range out.src[out.start, out.end) never refers to buf. With `reserve` > 0 a short body that
 * takes the fast path is put in the slab `reserve` bytes after its free space and `after` bytes
 * are kept free behind it (out.framed): room for the caller's framing (the tailer's runs). The
 * slab also has room for the body plus `reserve + after` bytes counted from the raw record's
 * length (end - start, at least 58 bytes more than the body), so a caller may move the body a
 * few bytes further (a header longer than `reserve`) and still stay in the slab.
 *
 * `end` < 0: the line's end is not known yet (the tailer's runs: no indexOf per line). The fast
 * path then finds it (`"}` and the newline after the time; out.recordEnd) for a record of Docker's
 * layout of at most SLAB_PIECE_MAX bytes; for anything else it returns false without deciding,
 * and the caller finds the newline and decodes again with the end.
 */
export function decodeJsonFileLineInto(
  buf: Buffer,
  start: number,
  end: number,
  out: DecodedBytes,
  reserve = 0,
  after = 0,
  /** With the end unknown: the longest record to look for (shorter than SLAB_PIECE_MAX). */
  guess = SLAB_PIECE_MAX,
): boolean {
  const known = end >= 0;
  if (buf !== lastBuf) {
    lastBuf = buf;
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.length);
    lastInWasm = inWasm(buf);
  }
  const bv = lastView;
  if (
    start + 8 > buf.length ||
    bv.getInt32(start, true) !== PREFIX_W0 ||
    bv.getInt32(start + 4, true) !== PREFIX_W1
  )
    return known && slowPath(buf, start, end, out);
  const s = start + PREFIX.length;
  // Unknown end: scan at most `guess` bytes (room for a header moved a little further).
  const lim = known ? end : Math.min(buf.length, s + Math.min(guess, SLAB_PIECE_MAX));
  if (known && end - s > SLAB_PIECE_MAX) return decodeLong(buf, start, end, s, out);
  // Short: one pass finds the closing quote, unescapes and copies into the current slab.
  if (slabPos + reserve + (known ? end - s : lim - s + 24) + after > SLAB_BYTES) {
    nextSlab(reserve > 0 && lastInWasm);
  } else if (reserve === 0 && slabIsWasm) {
    // A record's body: never in a WebAssembly slab (those are reused once their runs are).
    nextSlab(false);
  }
  const sl = slab;
  const sv = slabView;
  const o0 = slabPos + reserve;
  let o = o0;
  let i = s;
  let hi = 0;
  let q = -1;
  /** The last byte written came from a `\n` escape (Docker's end of line). */
  let nl = false;
  let escapes = 0;
  let ctl = false;
  // Redaction literals (out.pairs): every byte pair at an even offset of the body written is
  // looked up; pv holds the first byte of a pair whose second is not written yet.
  const pt = out.pairs;
  let lit = 0;
  let pv = 0;
  if (slabIsWasm && lastInWasm && wasmBody !== undefined) {
    if (pt !== undefined && pt !== wasm!.tableOf) {
      wasm!.table.set(pt);
      wasm!.tableOf = pt;
    }
    const base = buf.byteOffset;
    wasmBodies++;
    const r = wasmBody(
      base + s,
      base + lim,
      sl.byteOffset + o0,
      pt === undefined ? 0 : 1,
      known ? 1 : 0,
    );
    if (r === -1) return known && slowPath(buf, start, end, out);
    if (r === -3) return false;
    const res = wasmRes;
    q = r < 0 ? -1 : r - base;
    o = res[0]! - sl.byteOffset;
    lit = res[1]!;
    hi = res[2]! === 0 ? 0 : 0x80;
    nl = res[3] === 1;
    escapes = res[4]!;
    ctl = res[5] === 1;
    i = lim;
  }
  while (i < lim) {
    // Four bytes at a time while none is a quote, a backslash or a control character (bit tricks
    // on a 32-bit word: "has a zero byte" of w ^ 0x22…, w ^ 0x5c…, "has a byte < 0x20" of w; each
    // exact as an any-test). Non-ASCII bytes are copied here and noted in hi.
    while (i + 4 <= lim) {
      const w = bv.getInt32(i, true);
      const xq = w ^ 0x22222222;
      const xb = w ^ 0x5c5c5c5c;
      if (
        (((xq - 0x01010101) & ~xq) | ((xb - 0x01010101) & ~xb) | ((w - 0x20202020) & ~w)) &
        0x80808080
      )
        break;
      sv.setInt32(o, w, true);
      if (pt !== undefined) {
        if (((o - o0) & 1) === 0) lit |= pt[w & 0xffff]! | pt[w >>> 16]!;
        else {
          lit |= pt[pv | ((w & 0xff) << 8)]! | pt[(w >>> 8) & 0xffff]!;
          pv = w >>> 24;
        }
      }
      hi |= w;
      o += 4;
      i += 4;
      nl = false;
    }
    if (i >= lim) break;
    const c = buf[i]!;
    if (c === Q) {
      q = i;
      break;
    }
    if (c === BS) {
      let v: number;
      switch (buf[i + 1]) {
        case 0x6e: // n
          v = 0x0a;
          break;
        case 0x22: // "
          v = 0x22;
          break;
        case 0x5c: // \
          v = 0x5c;
          break;
        case 0x2f: // /
          v = 0x2f;
          break;
        case 0x74: // t
          v = 0x09;
          break;
        case 0x72: // r
          v = 0x0d;
          break;
        case 0x62: // b
          v = 0x08;
          break;
        case 0x66: // f
          v = 0x0c;
          break;
        default:
          // \uXXXX (surrogates…) or invalid: JSON.parse decides
          return known && slowPath(buf, start, end, out);
      }
      if (pt !== undefined) {
        if (((o - o0) & 1) === 0) pv = v;
        else lit |= pt[pv | (v << 8)]!;
      }
      sl[o++] = v;
      nl = v === 0x0a;
      escapes++;
      i += 2;
      continue;
    }
    hi |= c;
    if (c < 0x20) {
      // A raw newline ends the line: with its end unknown, the caller cuts the line there.
      if (!known && c === 0x0a) return false;
      ctl = true;
    }
    if (pt !== undefined) {
      if (((o - o0) & 1) === 0) pv = c;
      else lit |= pt[pv | (c << 8)]!;
    }
    sl[o++] = c;
    nl = false;
    i++;
  }
  if (q < 0) return known && slowPath(buf, start, end, out);
  // Raw control characters (invalid JSON) pass only in a string whose sole escape is the final
  // `\n`, as they always have; with other escapes JSON.parse decides (it rejects them).
  if (ctl && escapes > (nl ? 1 : 0)) return known && slowPath(buf, start, end, out);
  if (!known) {
    // The record ends with `"}` and the newline after the time (at most 40 bytes long).
    const ts = q + KEYS_BYTES;
    const tl = Math.min(buf.length - 2, ts + 40);
    // Where the last time string ended first: accepted only if followed by `"}` and the newline.
    // A guess past the real end holds a quote or a newline inside the time, which the time
    // parse (finishFast) refuses: the caller then finds the newline and decodes with the end.
    // Docker drops the trailing zeros of the nanoseconds (Go's RFC 3339): about one time in ten
    // is a byte shorter than the usual length, which is tried second and not kept as the guess.
    let t = ts + lastTimeLen;
    if (t < tl && buf[t] === Q && buf[t + 1] === 0x7d && buf[t + 2] === 0x0a) {
      // the guess
    } else if (buf[t - 1] === Q && buf[t] === 0x7d && buf[t + 1] === 0x0a && t - 1 < tl) {
      t--;
    } else {
      t = ts;
      while (t < tl && buf[t] !== Q && buf[t] !== 0x0a) t++;
      if (t >= tl || buf[t] !== Q || buf[t + 1] !== 0x7d || buf[t + 2] !== 0x0a) return false;
      lastTimeLen = t - ts;
    }
    end = t + 2;
    if (end - s > SLAB_PIECE_MAX) return false;
  }
  const n = nl ? o - 1 - o0 : o - o0;
  // Protobuf strings must be valid UTF-8; Docker always writes valid UTF-8, a corrupt file might not.
  // (Escapes decode to ASCII: the decoded body is valid exactly when the raw bytes are.)
  if ((hi & 0x80808080) !== 0 && !isUtf8(sl.subarray(o0, o0 + n)))
    return known && slowPath(buf, start, end, out);
  if (!finishFast(buf, end, q, out, sl, o0, o0 + n, nl, bv, reserve > 0))
    return known && slowPath(buf, start, end, out);
  out.recordEnd = end;
  if (pt !== undefined) out.pairHits = lit;
  // Without room asked for, the body is a record's: this slab is never reused.
  if (reserve === 0) slabTainted = true;
  slabPos = o0 + n + after;
  return true;
}

/** Encodes a record the way Docker's json-file driver does (tests, benchmarks, fixtures). */
export function encodeJsonFileLine(
  log: string,
  stream: 'stdout' | 'stderr',
  time: string,
  attrs?: Record<string, string>,
): string {
  const a = attrs ? `,"attrs":${JSON.stringify(attrs)}` : '';
  return `{"log":${JSON.stringify(log)},"stream":"${stream}"${a},"time":"${time}"}\n`;
}
