// Decoder of Docker's json-file records: {"log":"...\n","stream":"stdout","attrs":{...},"time":"..."}
//
// Hot path: most records have the exact layout Docker writes and a `log` string whose only escape
// is the trailing `\n`. For those the body is a slice of the read buffer (no UTF-8 decode, no
// JSON.parse, no copy). Anything else falls back to JSON.parse.
import { isUtf8 } from 'node:buffer';

export interface DecodedLine {
  /** Body bytes without the trailing newline (may be a view into the read buffer). */
  body: Buffer;
  /** False for Docker's partial records (no trailing newline: the line continues). */
  complete: boolean;
  stream: 'stdout' | 'stderr';
  timeSec: number;
  timeNanos: number;
  attrs?: Record<string, string>;
}

const PREFIX = Buffer.from('{"log":"');
const STREAM_KEY = Buffer.from('","stream":"');
const TIME_KEY = Buffer.from('","time":"');
const Q = 0x22;
const BS = 0x5c;
const STDOUT = Buffer.from('stdout');
const STDERR = Buffer.from('stderr');

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

/**
 * Parses RFC 3339 with up to 9 fraction digits (`2024-05-01T12:34:56.123456789Z`, or with a
 * numeric offset) from buf[start, end). Returns false when it is not such a timestamp.
 */
export function parseTimeBytes(
  buf: Buffer,
  start: number,
  end: number,
  out: { sec: number; nanos: number },
): boolean {
  if (end - start < 20) return false;
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
    return false;
  if (!(y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60))
    return false;
  let i = start + 19;
  let nanos = 0;
  if (buf[i] === 0x2e) {
    i++;
    let n = 0;
    let scale = 100_000_000;
    while (i < end) {
      const c = dig(buf, i);
      if (Number.isNaN(c)) break;
      if (n < 9) nanos += c * scale;
      scale /= 10;
      n++;
      i++;
    }
    if (n === 0) return false;
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
  out.sec = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offsetSec;
  out.nanos = nanos;
  return true;
}

const tmpTime = { sec: 0, nanos: 0 };

function slowPath(buf: Buffer, start: number, end: number): DecodedLine | undefined {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8', start, end));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.log !== 'string' || typeof o.time !== 'string') return undefined;
  const stream = o.stream === 'stderr' ? 'stderr' : o.stream === 'stdout' ? 'stdout' : undefined;
  if (!stream) return undefined;
  const tb = Buffer.from(o.time, 'latin1');
  if (!parseTimeBytes(tb, 0, tb.length, tmpTime)) {
    const ms = Date.parse(o.time);
    if (!Number.isFinite(ms)) return undefined;
    tmpTime.sec = Math.floor(ms / 1000);
    tmpTime.nanos = (ms - tmpTime.sec * 1000) * 1_000_000;
  }
  const complete = o.log.endsWith('\n');
  const body = Buffer.from(complete ? o.log.slice(0, -1) : o.log, 'utf8');
  const out: DecodedLine = {
    body,
    complete,
    stream,
    timeSec: tmpTime.sec,
    timeNanos: tmpTime.nanos,
  };
  if (o.attrs !== null && typeof o.attrs === 'object' && !Array.isArray(o.attrs)) {
    const attrs: Record<string, string> = {};
    let any = false;
    for (const [k, val] of Object.entries(o.attrs as Record<string, unknown>)) {
      if (typeof val === 'string') {
        attrs[k] = val;
        any = true;
      }
    }
    if (any) out.attrs = attrs;
  }
  return out;
}

/**
 * Decodes one json-file record in buf[start, end) (without the newline). Returns undefined for a
 * malformed record (caller counts and skips it).
 */
export function decodeJsonFileLine(
  buf: Buffer,
  start: number,
  end: number,
): DecodedLine | undefined {
  if (!startsWithAt(buf, start, PREFIX)) return slowPath(buf, start, end);
  const s = start + PREFIX.length;
  const q = buf.indexOf(Q, s);
  if (q < 0 || q >= end) return slowPath(buf, start, end);
  const b = buf.indexOf(BS, s);
  let bodyEnd: number;
  let complete: boolean;
  if (b < 0 || b > q) {
    bodyEnd = q;
    complete = false;
  } else if (b === q - 2 && buf[b + 1] === 0x6e) {
    bodyEnd = b;
    complete = true;
  } else return slowPath(buf, start, end);
  if (!startsWithAt(buf, q, STREAM_KEY)) return slowPath(buf, start, end);
  const st = q + STREAM_KEY.length;
  let stream: 'stdout' | 'stderr';
  if (startsWithAt(buf, st, STDOUT)) stream = 'stdout';
  else if (startsWithAt(buf, st, STDERR)) stream = 'stderr';
  else return slowPath(buf, start, end);
  const t0 = st + 6;
  if (!startsWithAt(buf, t0, TIME_KEY)) return slowPath(buf, start, end);
  const ts = t0 + TIME_KEY.length;
  // The record ends with `"}` (Docker writes no whitespace).
  if (buf[end - 1] !== 0x7d || buf[end - 2] !== Q) return slowPath(buf, start, end);
  if (!parseTimeBytes(buf, ts, end - 2, tmpTime)) return slowPath(buf, start, end);
  const body = buf.subarray(s, bodyEnd);
  // Protobuf strings must be valid UTF-8; Docker always writes valid UTF-8, a corrupt file might not.
  if (!isUtf8(body)) return slowPath(buf, start, end);
  return { body, complete, stream, timeSec: tmpTime.sec, timeNanos: tmpTime.nanos };
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
