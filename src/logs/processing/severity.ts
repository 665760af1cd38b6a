// Severity text / numbers of common logging libraries mapped to OpenTelemetry SeverityNumber
// (TRACE=1, DEBUG=5, INFO=9, WARN=13, ERROR=17, FATAL=21; the 2..4 steps for finer levels).

export interface Severity {
  /** OpenTelemetry SeverityNumber 1..24. */
  number: number;
  /** The original text, or the OTel short name when the source level was numeric. */
  text: string;
}

const TEXT: Record<string, number> = {
  trace: 1,
  trc: 1,
  finest: 1,
  verbose: 1,
  vrb: 1,
  finer: 2,
  debug: 5,
  dbg: 5,
  fine: 5,
  debg: 5,
  config: 6,
  info: 9,
  inf: 9,
  information: 9,
  informational: 9,
  notice: 10,
  warn: 13,
  wrn: 13,
  warning: 13,
  error: 17,
  err: 17,
  eror: 17,
  erro: 17,
  severe: 17,
  critical: 18,
  crit: 18,
  crt: 18,
  fatal: 21,
  ftl: 21,
  alert: 21,
  panic: 21,
  dpanic: 21,
  emerg: 22,
  emergency: 22,
};

/** OTel short names of the six ranges, for numeric source levels. */
const NAMES = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;

function shortName(n: number): string {
  return NAMES[Math.min(5, Math.floor((n - 1) / 4))]!;
}

/** Syslog severities 0..7 (emerg .. debug). */
const SYSLOG = [22, 21, 18, 17, 13, 10, 9, 5];

/**
 * Numeric levels: 0..7 are syslog severities; 10..69 are bunyan / pino levels (10 trace, 20 debug,
 * 30 info, 40 warn, 50 error, 60 fatal; values in between map to the range they fall in). Other
 * numbers are unknown.
 */
export function severityFromNumber(v: number): Severity | undefined {
  if (!Number.isFinite(v) || !Number.isInteger(v)) return undefined;
  let n: number | undefined;
  if (v >= 0 && v <= 7) n = SYSLOG[v];
  else if (v >= 10 && v < 70) n = [1, 5, 9, 13, 17, 21][Math.floor(v / 10) - 1];
  return n === undefined ? undefined : { number: n, text: shortName(n) };
}

/** Text levels, case-insensitive, with common aliases; numeric strings as in severityFromNumber. */
export function severityFromText(raw: string): Severity | undefined {
  if (raw.length === 0 || raw.length > 32) return undefined;
  const t = raw.trim().toLowerCase();
  const n = TEXT[t];
  if (n !== undefined) return { number: n, text: raw };
  if (/^\d{1,2}$/.test(t)) {
    const s = severityFromNumber(Number(t));
    return s && { number: s.number, text: s.text };
  }
  // e.g. "WARN2", "INFO4" (already OTel short names with a step).
  const m = /^(trace|debug|info|warn|error|fatal)([1-4])$/.exec(t);
  if (m) return { number: TEXT[m[1]!]! + Number(m[2]) - 1, text: raw };
  return undefined;
}

/** A level field's value, whatever its type. */
export function severityFrom(v: unknown): Severity | undefined {
  if (typeof v === 'string') return severityFromText(v);
  if (typeof v === 'number') return severityFromNumber(v);
  return undefined;
}
