// The few OTLP protobuf pieces of a log record that both the exporter's encoder
// (src/exporters/otlp-logs-encode.ts) and the file tailer's encoded runs (src/logs/run.ts) write:
// one definition, so a line encoded at read time and one encoded at export time are the same bytes.

export function varintLen(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

const TWO32 = 4294967296;

/** The 32-bit halves nanosHiLoInto writes (one object, no allocation per call). */
export const hiLo = { lo: 0, hi: 0 };

/** The halves of the last second seen, times 1e9 (lines come many to a second). */
let lastSec = -1;
let secLo = 0;
let secHi = 0;

/** Splits sec*1e9+nanos (up to 2^64) into 32-bit halves without losing precision (into hiLo). */
export function nanosHiLoInto(sec: number, nanos: number): void {
  if (sec !== lastSec) {
    splitInto(sec, 0);
    lastSec = sec;
    secLo = hiLo.lo;
    secHi = hiLo.hi;
  }
  if (nanos >= 0 && nanos < 1e9 && Number.isInteger(nanos)) {
    // the second's halves plus the nanoseconds (< 2^30): one carry at most
    const lo = secLo + nanos;
    if (lo >= TWO32) {
      hiLo.lo = lo - TWO32;
      hiLo.hi = secHi + 1;
    } else {
      hiLo.lo = lo;
      hiLo.hi = secHi;
    }
    return;
  }
  splitInto(sec, nanos);
}

function splitInto(sec: number, nanos: number): void {
  const sh = Math.floor(sec / 65536);
  const sl = sec - sh * 65536;
  const a = sh * 1e9; // < 2^46, exact; contributes a * 2^16
  const aHi = Math.floor(a / 65536);
  const aLo = (a - aHi * 65536) * 65536; // < 2^32
  const b = sl * 1e9 + nanos; // < 2^47, exact
  const bHi = Math.floor(b / TWO32);
  const bLo = b - bHi * TWO32;
  let lo = aLo + bLo;
  let hi = aHi + bHi;
  if (lo >= TWO32) {
    lo -= TWO32;
    hi += 1;
  }
  hiLo.lo = lo;
  hiLo.hi = hi;
}

/** A length-delimited field (tag, length, payload) of short payloads (< 128 bytes). */
function shortField(field: number, payload: Buffer): Buffer {
  if (payload.length >= 0x80) throw new Error('shortField: payload too long');
  return Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
}

/**
 * LogRecord.attributes (field 6) `log.iostream` = stdout / stderr: the KeyValue every line of a
 * container's output carries.
 */
export const IOSTREAM_FIELD: Readonly<Record<'stdout' | 'stderr', Buffer>> = {
  stdout: shortField(
    6,
    Buffer.concat([
      shortField(1, Buffer.from('log.iostream')),
      shortField(2, shortField(1, Buffer.from('stdout'))),
    ]),
  ),
  stderr: shortField(
    6,
    Buffer.concat([
      shortField(1, Buffer.from('log.iostream')),
      shortField(2, shortField(1, Buffer.from('stderr'))),
    ]),
  ),
};
