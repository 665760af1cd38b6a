// Trace context validation: W3C trace ids (32 hex), span ids (16 hex), traceparent.

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/**
 * A trace id as 32 lowercase hex digits, or undefined. Accepts upper case and 16-digit (64-bit,
 * Jaeger/Zipkin) ids, which are left-padded with zeros as OpenTelemetry does. All-zero is invalid.
 */
export function normalizeTraceId(v: unknown): string | undefined {
  if (typeof v !== 'string' || (v.length !== 32 && v.length !== 16)) return undefined;
  const s = v.toLowerCase();
  const full = s.length === 16 ? ZERO16 + s : s;
  return HEX32.test(full) && full !== ZERO32 ? full : undefined;
}

/** A span id as 16 lowercase hex digits, or undefined (all-zero is invalid). */
export function normalizeSpanId(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length !== 16) return undefined;
  const s = v.toLowerCase();
  return HEX16.test(s) && s !== ZERO16 ? s : undefined;
}

export interface TraceContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/**
 * W3C traceparent "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>". Version ff is invalid;
 * future versions (01..fe) may carry more fields after the flags, which are ignored.
 */
export function parseTraceparent(v: unknown): TraceContext | undefined {
  if (typeof v !== 'string' || v.length < 55 || v.length > 512) return undefined;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(v.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO32 || spanId === ZERO16) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) };
}
