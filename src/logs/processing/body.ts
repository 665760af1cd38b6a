// Structured body parsing: JSON objects and logfmt lines become a message body, a severity, trace
// context and attributes — all bounded. A line that does not parse is left as it is.
import { parseLogfmt } from './logfmt.js';
import { severityFrom, type Severity } from './severity.js';
import { normalizeSpanId, normalizeTraceId, parseTraceparent } from './trace.js';
import type { AttrValue } from './types.js';

export const PARSER_MODES = ['none', 'json', 'logfmt', 'auto'] as const;
export type ParserMode = (typeof PARSER_MODES)[number];

export interface BodyLimits {
  /** Nesting levels flattened into dotted keys; deeper values become one JSON string attribute. */
  maxDepth: number;
  /** Most attributes taken from one line; the rest are counted in `dropped`. */
  maxAttributes: number;
  /** Longest attribute value (and body taken from a message field), UTF-8 bytes; longer is cut. */
  maxValueBytes: number;
}

/** Longest attribute key, UTF-8 bytes (longer keys are cut and counted as truncated). */
export const MAX_KEY_BYTES = 256;

export interface ParsedBody {
  format: 'json' | 'logfmt';
  /** The message field, or the original line when the object has none. */
  body: string;
  attributes: Record<string, AttrValue>;
  severity?: Severity;
  traceId?: string;
  spanId?: string;
  traceFlags?: number;
  /** Attributes left out (max_attributes, or repeated logfmt keys). */
  dropped: number;
  /** Keys or values cut to their byte bound. */
  truncated: number;
}

/** Field names searched, in order; dotted names also match nested objects (log.level). */
export const MESSAGE_KEYS = ['msg', 'message', 'log', '@message', '@m', 'text', 'MESSAGE'];
export const LEVEL_KEYS = [
  'level',
  'lvl',
  'severity',
  'levelname',
  'log.level',
  'loglevel',
  'log_level',
  'severity_text',
  'severityText',
  '@l',
  '@level',
  'LEVEL',
  'level_name',
];
export const TRACE_ID_KEYS = [
  'trace_id',
  'traceId',
  'traceid',
  'trace.id',
  'otelTraceID',
  'TraceId',
];
export const SPAN_ID_KEYS = ['span_id', 'spanId', 'spanid', 'span.id', 'otelSpanID', 'SpanId'];
export const TRACE_FLAGS_KEYS = ['trace_flags', 'traceFlags', 'trace.flags', 'otelTraceFlags'];
export const TRACEPARENT_KEYS = ['traceparent', 'traceParent'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Cuts s to at most maxBytes UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): { s: string; cut: boolean } {
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes) return { s, cut: false };
  let out = Buffer.from(s).subarray(0, maxBytes).toString('utf8');
  // A character split at the end decodes as U+FFFD: drop it.
  while (out.endsWith('\uFFFD') && !s.startsWith(out)) out = out.slice(0, -1);
  return { s: out, cut: true };
}

/** JSON text of v, at most maxBytes characters-ish, never recursing deeper than 64 levels. */
export function boundedJson(v: Json, maxChars: number): string {
  const parts: string[] = [];
  let len = 0;
  const push = (s: string): boolean => {
    parts.push(s);
    len += s.length;
    return len < maxChars;
  };
  const walk = (x: Json, depth: number): boolean => {
    if (depth > 64) return push('"…"');
    if (x === null || typeof x !== 'object') {
      return push(typeof x === 'number' && !Number.isFinite(x) ? 'null' : JSON.stringify(x));
    }
    if (Array.isArray(x)) {
      if (!push('[')) return false;
      for (let i = 0; i < x.length; i++) {
        if (i > 0 && !push(',')) return false;
        if (!walk(x[i]!, depth + 1)) return false;
      }
      return push(']');
    }
    if (!push('{')) return false;
    let first = true;
    for (const k in x) {
      if (!first && !push(',')) return false;
      first = false;
      if (!push(JSON.stringify(k) + ':')) return false;
      if (!walk(x[k]!, depth + 1)) return false;
    }
    return push('}');
  };
  walk(v, 0);
  const s = parts.join('');
  return s.length > maxChars ? s.slice(0, maxChars) : s;
}

function lookup(obj: JsonObject, key: string): Json | undefined {
  if (Object.prototype.hasOwnProperty.call(obj, key)) return obj[key];
  const dot = key.indexOf('.');
  if (dot > 0) {
    const head = obj[key.slice(0, dot)];
    if (isObject(head)) return lookup(head, key.slice(dot + 1));
  }
  return undefined;
}

/** Finds the first key of `keys` whose value `accept` takes; records the key as consumed. */
function take<T>(
  obj: JsonObject,
  keys: readonly string[],
  consumed: Set<string>,
  accept: (v: Json) => T | undefined,
): T | undefined {
  for (const k of keys) {
    const v = lookup(obj, k);
    if (v === undefined) continue;
    const r = accept(v);
    if (r !== undefined) {
      consumed.add(k);
      return r;
    }
  }
  return undefined;
}

const toMessage = (v: Json): string | undefined =>
  typeof v === 'string'
    ? v
    : typeof v === 'number' || typeof v === 'boolean'
      ? String(v)
      : undefined;

class AttrSink {
  attrs: Record<string, AttrValue> = Object.create(null) as Record<string, AttrValue>;
  count = 0;
  dropped = 0;
  truncated = 0;
  constructor(readonly limits: BodyLimits) {}

  add(key: string, v: AttrValue): void {
    if (this.count >= this.limits.maxAttributes) {
      this.dropped++;
      return;
    }
    const k = truncateUtf8(key, MAX_KEY_BYTES);
    if (k.cut) this.truncated++;
    if (Object.prototype.hasOwnProperty.call(this.attrs, k.s)) {
      this.dropped++;
      return;
    }
    if (typeof v === 'string') {
      const t = truncateUtf8(v, this.limits.maxValueBytes);
      if (t.cut) this.truncated++;
      v = t.s;
    }
    this.attrs[k.s] = v;
    this.count++;
  }
  full(): boolean {
    return this.count >= this.limits.maxAttributes;
  }
}

/** Attributes v would have produced (objects below `depthLeft` levels count as one). */
function countLeaves(v: Json, depthLeft: number): number {
  if (!isObject(v) || depthLeft <= 0) return 1;
  let n = 0;
  for (const k in v) n += countLeaves(v[k]!, depthLeft - 1);
  return Math.max(n, 1);
}

function flatten(
  obj: JsonObject,
  prefix: string,
  depth: number,
  sink: AttrSink,
  consumed: Set<string>,
): void {
  for (const k in obj) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (consumed.has(key)) continue;
    const v = obj[k]!;
    if (sink.full()) {
      sink.dropped += v === null ? 0 : countLeaves(v, sink.limits.maxDepth - depth);
      continue;
    }
    if (v === null) continue;
    if (typeof v === 'string' || typeof v === 'boolean') sink.add(key, v);
    else if (typeof v === 'number')
      // Integers beyond 2^53 are not exact any more: shipped as text rather than as a wrong int64.
      sink.add(
        key,
        Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v)) ? v : String(v),
      );
    else if (isObject(v) && depth < sink.limits.maxDepth)
      flatten(v, key, depth + 1, sink, consumed);
    else sink.add(key, boundedJson(v, sink.limits.maxValueBytes + 1));
  }
}

function parseJsonObject(line: string): JsonObject | undefined {
  const t = line.trim();
  if (t.length < 2 || t.charCodeAt(0) !== 123 || t.charCodeAt(t.length - 1) !== 125)
    return undefined;
  try {
    const v = JSON.parse(t) as Json;
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function fromObject(
  obj: JsonObject,
  format: 'json' | 'logfmt',
  line: string,
  limits: BodyLimits,
): ParsedBody {
  const consumed = new Set<string>();
  const out: ParsedBody = { format, body: line, attributes: {}, dropped: 0, truncated: 0 };
  const msg = take(obj, MESSAGE_KEYS, consumed, toMessage);
  const sink = new AttrSink(limits);
  if (msg !== undefined) out.body = msg;
  out.severity = take(obj, LEVEL_KEYS, consumed, severityFrom);
  const tp = take(obj, TRACEPARENT_KEYS, consumed, parseTraceparent);
  const traceId = take(obj, TRACE_ID_KEYS, consumed, normalizeTraceId);
  const spanId = take(obj, SPAN_ID_KEYS, consumed, normalizeSpanId);
  const flags = take(obj, TRACE_FLAGS_KEYS, consumed, (v) => {
    const n = typeof v === 'string' && /^[0-9a-fA-F]{1,2}$/.test(v) ? parseInt(v, 16) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 255 ? n : undefined;
  });
  // Explicit ids win over traceparent; a span id without a trace id is meaningless.
  if (traceId) {
    out.traceId = traceId;
    if (spanId) out.spanId = spanId;
    else if (tp && tp.traceId === traceId) out.spanId = tp.spanId;
    if (flags !== undefined) out.traceFlags = flags;
    else if (tp && tp.traceId === traceId) out.traceFlags = tp.traceFlags;
  } else if (tp) {
    out.traceId = tp.traceId;
    out.spanId = tp.spanId;
    out.traceFlags = flags ?? tp.traceFlags;
  } else {
    // Not lifted: keep the fields as attributes.
    for (const k of [...SPAN_ID_KEYS, ...TRACE_FLAGS_KEYS]) consumed.delete(k);
  }
  flatten(obj, '', 1, sink, consumed);
  out.attributes = sink.attrs;
  out.dropped = sink.dropped;
  out.truncated = sink.truncated;
  return out;
}

/** logfmt: at least one key=value; in auto mode every token must be key=value and there are ≥ 2. */
function parseLogfmtObject(
  line: string,
  strict: boolean,
  limits: BodyLimits,
): JsonObject | undefined {
  // Auto mode: the first token must be key=value; plain text is rejected without parsing.
  if (strict) {
    let i = 0;
    while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
    const ks = i;
    for (; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (c === 61 /* = */ || c === 32 || c === 9) break;
    }
    if (i === ks || i >= line.length || line.charCodeAt(i) !== 61) return undefined;
  }
  // Bound the work on hostile lines: more pairs than this are not kept anyway.
  const maxPairs = limits.maxAttributes + 16;
  const r = parseLogfmt(line, maxPairs);
  if (!r || r.valued === 0) return undefined;
  if (strict && (r.valued !== r.pairs.length || r.valued < 2)) return undefined;
  const obj: JsonObject = Object.create(null) as JsonObject;
  for (const [k, v] of r.pairs) {
    if (Object.prototype.hasOwnProperty.call(obj, k)) continue; // first occurrence wins
    obj[k] = v;
  }
  return obj;
}

export type ParseOutcome =
  | { kind: 'parsed'; parsed: ParsedBody }
  /** The chosen parser could not read the line (shipped unchanged, counted). */
  | { kind: 'failed' }
  /** Nothing to do (parser none, or auto found plain text). */
  | { kind: 'plain' };

const PLAIN: ParseOutcome = { kind: 'plain' };
const FAILED: ParseOutcome = { kind: 'failed' };

/**
 * False when parser `auto` would find plain text in the line these UTF-8 bytes decode to, decided
 * from the bytes alone (so a plain line need not be decoded): JSON needs `{` as its first
 * non-blank character, logfmt in auto mode needs `key=` as its first token (the checks of
 * parseJsonObject and parseLogfmtObject). True when it might parse, or when a non-ASCII byte comes
 * first (Unicode blanks are for the text path to judge).
 */
export function autoMayParse(b: Uint8Array, start = 0, end = b.length): boolean {
  const n = end;
  let i = start;
  // ASCII whitespace as String.prototype.trim and /\s/ see it.
  while (i < n) {
    const c = b[i]!;
    if (c !== 0x20 && (c < 0x09 || c > 0x0d)) break;
    i++;
  }
  if (i >= n) return false;
  const c0 = b[i]!;
  if (c0 === 0x7b /* { */ || c0 >= 0x80) return true;
  // logfmt (auto): skip spaces and tabs; the first token must end in `=` and not be empty.
  let k = start;
  while (k < n && (b[k] === 0x20 || b[k] === 0x09)) k++;
  const ks = k;
  for (; k < n; k++) {
    const c = b[k]!;
    if (c === 0x3d || c === 0x20 || c === 0x09) break;
  }
  return k !== ks && k < n && b[k] === 0x3d;
}

/** Parses one line. Never throws; work and output are bounded by the line and `limits`. */
export function parseBody(line: string, mode: ParserMode, limits: BodyLimits): ParseOutcome {
  if (mode === 'none') return PLAIN;
  try {
    if (mode === 'json' || mode === 'auto') {
      const obj = parseJsonObject(line);
      if (obj) return { kind: 'parsed', parsed: fromObject(obj, 'json', line, limits) };
      if (mode === 'json') return FAILED;
      if (/^\s*\{/.test(line)) return FAILED;
    }
    const obj = parseLogfmtObject(line, mode === 'auto', limits);
    if (obj) return { kind: 'parsed', parsed: fromObject(obj, 'logfmt', line, limits) };
    return mode === 'logfmt' ? FAILED : PLAIN;
  } catch {
    return FAILED;
  }
}
