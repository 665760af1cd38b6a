/**
 * Helpers for writing Prometheus text exposition (format 0.0.4) by hand.
 *
 * Label values are made safe here: invalid UTF-8 (lone surrogates in a JS string) is replaced by
 * U+FFFD, values longer than {@link MAX_LABEL_VALUE_CHARS} characters are cut to that length and
 * end in `…`, and backslash, double quote and newline are escaped as the format requires.
 */

/** Upper bound of a label value in characters (UTF-16 units) after truncation, marker included. */
export const MAX_LABEL_VALUE_CHARS = 1024;

const NEEDS_ESCAPE = /[\\"\n]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes a label value for the text format (backslash, double quote, line feed). */
export function escapeLabelValue(v: string): string {
  let s = v;
  s = s.replace(LONE_SURROGATE, '\uFFFD');
  if (s.length > MAX_LABEL_VALUE_CHARS) {
    let cut = MAX_LABEL_VALUE_CHARS - 1;
    // do not split a surrogate pair
    const c = s.charCodeAt(cut - 1);
    if (c >= 0xd800 && c <= 0xdbff) cut -= 1;
    s = s.slice(0, cut) + '…';
  }
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text (backslash and newline). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** cAdvisor's label-name sanitizing: every character outside [a-zA-Z0-9_] becomes `_`. */
export function sanitizeLabelName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

/** A sample value as Prometheus writes it. */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? '+Inf' : '-Inf';
}

/** `a="x",b="y"` from pairs (values escaped). Empty values are left out, as Prometheus does. */
export function labelPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = '';
  for (const [k, v] of pairs) {
    if (v === '') continue;
    out += (out ? ',' : '') + k + '="' + escapeLabelValue(v) + '"';
  }
  return out;
}

export type MetricType = 'counter' | 'gauge' | 'untyped';

/** `# HELP` + `# TYPE` lines of a family. */
export function header(name: string, type: MetricType, help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/**
 * The `# HELP` + `# TYPE` lines of a family in OpenMetrics 1.0, as `toOpenMetrics` in
 * exporters/prometheus.ts converts them: a counter's family name has no `_total` (its samples
 * keep it) and `untyped` is `unknown`.
 */
export function openMetricsHeader(name: string, type: MetricType, help: string): string {
  const family = type === 'counter' && name.endsWith('_total') ? name.slice(0, -6) : name;
  const t = type === 'untyped' ? 'unknown' : type;
  return `# HELP ${family} ${escapeHelp(help)}\n# TYPE ${family} ${t}\n`;
}

/** Longest sample value text (`-1.7976931348623157e+308`) plus the line feed, rounded up. */
const MAX_VALUE_BYTES = 32;

/**
 * Writes sample lines (`name{labels} value\n`) from pre-rendered byte blocks into large Buffers,
 * without a string per sample. Samples are grouped: begin() starts a group (a family), end()
 * returns its bytes as one or more Buffers (more than one when the group crossed into a new
 * block). The Buffers stay valid after later writes: a full block is never reused.
 */
export class ExpositionWriter {
  /** Bytes written so far. */
  total = 0;
  private buf: Buffer;
  private pos = 0;
  private groupStart = 0;
  private segments: Buffer[] = [];

  /** Every block written to (for recycling once nobody reads the output any more). */
  readonly blocks: Buffer[] = [];

  /**
   * @param alloc gives a block of at least `size` bytes; a recycled one saves the page faults of
   *   fresh memory, which cost more than writing the samples.
   */
  constructor(
    sizeHint: number,
    private readonly alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
  ) {
    this.buf = this.alloc(Math.max(sizeHint, 4096));
    this.blocks.push(this.buf);
  }

  begin(): void {
    this.segments = [];
    this.groupStart = this.pos;
  }

  end(): Buffer[] {
    if (this.pos > this.groupStart)
      this.segments.push(this.buf.subarray(this.groupStart, this.pos));
    this.total += this.pos - this.groupStart;
    this.groupStart = this.pos;
    const s = this.segments;
    this.segments = [];
    return s;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > this.groupStart) {
      this.segments.push(this.buf.subarray(this.groupStart, this.pos));
      this.total += this.pos - this.groupStart;
    }
    this.buf = this.alloc(Math.max(n, this.buf.length));
    this.blocks.push(this.buf);
    this.pos = 0;
    this.groupStart = 0;
  }

  /** `a` `b` `c` (raw bytes: name and `{`, labels, `} ` or extra labels and `} `) + value + LF. */
  series(a: Uint8Array, b: Uint8Array, c: Uint8Array, v: number): void {
    this.room(a.length + b.length + c.length + MAX_VALUE_BYTES);
    const buf = this.buf;
    buf.set(a, this.pos);
    buf.set(b, this.pos + a.length);
    buf.set(c, this.pos + a.length + b.length);
    this.pos += a.length + b.length + c.length;
    this.value(v);
  }

  /** `a` `b` + value + LF. */
  series2(a: Uint8Array, b: Uint8Array, v: number): void {
    this.room(a.length + b.length + MAX_VALUE_BYTES);
    const buf = this.buf;
    buf.set(a, this.pos);
    buf.set(b, this.pos + a.length);
    this.pos += a.length + b.length;
    this.value(v);
  }

  /** The value as formatValue writes it, then a line feed. */
  private value(v: number): void {
    const buf = this.buf;
    let p = this.pos;
    if (v >= 0 && v <= 0xffffffff && v >>> 0 === v) {
      // unsigned 32-bit integer: digits without a string
      let digits = 1;
      for (let x = v; x >= 10; x = (x / 10) >>> 0) digits++;
      let x = v;
      for (let i = p + digits - 1; i >= p; i--) {
        const q = (x / 10) >>> 0;
        buf[i] = 0x30 + (x - q * 10);
        x = q;
      }
      p += digits;
    } else {
      const s = formatValue(v);
      for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    }
    buf[p++] = 0x0a;
    this.pos = p;
  }
}
