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
