// Pattern engine benchmark (issue 16): ns per log line of the default redaction set and of a
// typical drop filter on the linear-time engine (RE2JS, what the agent runs) against
// JavaScript's backtracking RegExp (what it ran before) on the same lines in the same run; and
// one catastrophic pattern on a crafted line, where RegExp's time doubles with every character.
import { Redactor, DEFAULT_REDACTION_PATTERNS } from '../src/logs/processing/redact.js';
import { Pattern } from '../src/util/pattern.js';
import { fmt, printTable } from './common.js';

/** The previous RegExp form of the default redaction set (with the lookahead RE2 lacks). */
const REGEXP_DEFAULTS: { re: RegExp; hint: RegExp }[] = [
  { re: /(?<=\b(?:[Bb]earer|BEARER)\s+)[A-Za-z0-9\-._~+/]+=*/g, hint: /bearer/i },
  { re: /(?<=\bAuthorization:\s*Basic\s+)[A-Za-z0-9+/]+=*/gi, hint: /basic/i },
  { re: /(?<=\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]+(?=@)/g, hint: /:\/\// },
  {
    re: /(?<=\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|apikey)\s*[=:]\s*)(?:"[^"]*"|'[^']*'|[^\s"',;&]+)/gi,
    hint: /pass|pwd|secret|token|key/i,
  },
  {
    re: /(?<="[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey)"\s*:\s*")(?:[^"\\]|\\.)*(?=")/gi,
    hint: /pass|pwd|secret|token|key/i,
  },
];
const REGEXP_ANY_HINT = new RegExp(
  REGEXP_DEFAULTS.map((p) => `(?:${p.hint.source})`).join('|'),
  'i',
);

function regexpRedact(s: string): number {
  let n = 0;
  if (!REGEXP_ANY_HINT.test(s)) return 0;
  for (const p of REGEXP_DEFAULTS) {
    if (!p.hint.test(s)) continue;
    p.re.lastIndex = 0;
    s = s.replace(p.re, () => {
      n++;
      return '***';
    });
  }
  return n;
}

/** A mix like a busy host's: mostly plain lines, some JSON, ~3 % carrying a secret. */
function corpus(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 100;
    if (k === 0) out.push(`GET /api/v1/items?id=${i} Authorization: Bearer eyJhbGciOi.${i}.sig`);
    else if (k === 1) out.push(`connecting to postgres://app:s3cret${i}@db:5432/app`);
    else if (k === 2) out.push(`{"user":"u${i}","password":"pw${i}","level":"info"}`);
    else if (k < 30)
      out.push(
        `{"level":"info","ts":${1_700_000_000 + i},"msg":"request handled","path":"/api/v1/items/${i}","status":200,"duration_ms":${i % 97}}`,
      );
    else if (k < 40) out.push(`level=info msg="cache refresh" keys=${i} took=${i % 13}ms`);
    else
      out.push(
        `2024-05-01T10:00:${String(i % 60).padStart(2, '0')}Z INFO worker-${i % 8} processed job ${i} in ${i % 250} ms`,
      );
  }
  return out;
}

function nsPerLine(lines: readonly string[], rounds: number, fn: (s: string) => unknown): number {
  for (const l of lines.slice(0, 2000)) fn(l); // warm up
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const l of lines) fn(l);
  return Number(process.hrtime.bigint() - t0) / (rounds * lines.length);
}

export function runPatternsBench(opts: { quick: boolean }): Record<string, unknown> {
  const lines = corpus(opts.quick ? 20_000 : 100_000);
  const rounds = opts.quick ? 2 : 5;

  const re2Redactor = new Redactor({ patterns: DEFAULT_REDACTION_PATTERNS, mask: '***' });
  // Same answers first: the comparison is only fair if both mask the same things.
  const re2Count = lines.reduce((n, l) => n + re2Redactor.redact(l).n, 0);
  const regexpCount = lines.reduce((n, l) => n + regexpRedact(l), 0);

  const redactRe2 = nsPerLine(lines, rounds, (l) => re2Redactor.redact(l));
  const redactRegexp = nsPerLine(lines, rounds, regexpRedact);

  // A literal alternation takes the Pattern's RegExp fast path; a real regex runs on RE2JS.
  const dropRe2 = Pattern.compile('healthcheck|GET /metrics|kube-probe');
  const dropRegexp = /healthcheck|GET \/metrics|kube-probe/;
  const filterRe2 = nsPerLine(lines, rounds, (l) => dropRe2.test(l));
  const filterRegexp = nsPerLine(lines, rounds, (l) => dropRegexp.test(l));
  const regexRe2 = Pattern.compile('^\\S+ (?:DEBUG|TRACE) |"level":"debug"');
  const regexRegexp = /^\S+ (?:DEBUG|TRACE) |"level":"debug"/;
  const rxRe2 = nsPerLine(lines, rounds, (l) => regexRe2.test(l));
  const rxRegexp = nsPerLine(lines, rounds, (l) => regexRegexp.test(l));

  // ^(a+)+$ on n "a" and a "!": RegExp takes ~2^n steps, RE2 n.
  const evil = Pattern.compile('^(a+)+$');
  const evilRe = /^(a+)+$/;
  const n = opts.quick ? 20 : 24;
  const crafted = `${'a'.repeat(n)}!`;
  const t1 = process.hrtime.bigint();
  evil.test(crafted);
  const evilRe2 = Number(process.hrtime.bigint() - t1);
  const t2 = process.hrtime.bigint();
  evilRe.test(crafted);
  const evilRegexp = Number(process.hrtime.bigint() - t2);

  printTable(
    `Patterns: ns per line, ${lines.length} lines x ${rounds} (RE2JS = the agent; RegExp = baseline)`,
    [
      {
        case: 'default redaction set',
        re2js_ns: redactRe2,
        regexp_ns: redactRegexp,
        ratio: fmt(redactRe2 / redactRegexp),
        masked: `${re2Count} / ${regexpCount}`,
      },
      {
        case: 'drop filter (3 alternatives)',
        re2js_ns: filterRe2,
        regexp_ns: filterRegexp,
        ratio: fmt(filterRe2 / filterRegexp),
        masked: '',
      },
      {
        case: 'drop filter (a regex)',
        re2js_ns: rxRe2,
        regexp_ns: rxRegexp,
        ratio: fmt(rxRe2 / rxRegexp),
        masked: '',
      },
      {
        case: `^(a+)+$ on ${n} a + "!" (one line)`,
        re2js_ns: evilRe2,
        regexp_ns: evilRegexp,
        ratio: fmt(evilRe2 / evilRegexp, 5),
        masked: '',
      },
    ],
  );
  return {
    lines: lines.length,
    rounds,
    redaction: { re2jsNsPerLine: redactRe2, regexpNsPerLine: redactRegexp, re2Count, regexpCount },
    dropFilterLiterals: { re2jsNsPerLine: filterRe2, regexpNsPerLine: filterRegexp },
    dropFilterRegex: { re2jsNsPerLine: rxRe2, regexpNsPerLine: rxRegexp },
    catastrophic: { pattern: '^(a+)+$', chars: n + 1, re2jsNs: evilRe2, regexpNs: evilRegexp },
  };
}
