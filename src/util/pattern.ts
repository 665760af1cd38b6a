// User-supplied patterns (drop/keep filters, multiline start patterns, redaction, secret keys;
// from the config file or from container labels) run on RE2JS, a pure-JS port of RE2: matching
// time is linear in the input, whatever the pattern. JavaScript's RegExp backtracks, and one
// label such as `^(a+)+$` on a crafted line froze the whole agent (issue 16).
//
// Syntax is RE2's (https://github.com/google/re2/wiki/Syntax), which is JavaScript's for common
// patterns: classes, \d \w \s \b, anchors, groups, named groups, alternation, counted repeats up
// to 1000, a leading "(?i)" for case-insensitive, and lookbehinds (?<=…) (?<!…) without capture
// groups inside. Not supported, and named in the error: lookaheads, backreferences, possessive
// or atomic groups, \u escapes (use \x{…}).
import { RE2JS, RE2JSException } from 're2js';

/** A pattern the linear-time engine cannot take. The message names the pattern and the cause. */
export class PatternError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`pattern ${JSON.stringify(clip(pattern))} is not supported: ${reason}`, options);
    this.name = 'PatternError';
  }
}

/** Longest pattern accepted (characters); longer ones are rejected before compiling. */
export const MAX_PATTERN_LENGTH = 4096;

export interface PatternOptions {
  /** Case-insensitive matching (same as a leading "(?i)"). */
  caseInsensitive?: boolean;
}

/** A compiled user pattern. Stateless: safe to share between containers. */
export class Pattern {
  private constructor(
    readonly source: string,
    private readonly re: RE2JS,
    private readonly groups: number,
    /**
     * For a plain alternation of ASCII literals ("healthcheck|GET /metrics"), the same search by
     * V8's RegExp: a literal alternation cannot backtrack beyond its own length at each position,
     * and V8 runs it about 30 times faster than RE2JS (bench/patterns.ts).
     */
    private readonly literal?: { test: RegExp; all: RegExp },
  ) {}

  /** Compiles `source`; throws PatternError naming the pattern and what is unsupported. */
  static compile(source: string, opts: PatternOptions = {}): Pattern {
    if (source.length > MAX_PATTERN_LENGTH)
      throw new PatternError(source, `longer than ${MAX_PATTERN_LENGTH} characters`);
    let flags = RE2JS.LOOKBEHINDS;
    if (opts.caseInsensitive) flags |= RE2JS.CASE_INSENSITIVE;
    try {
      const re = RE2JS.compile(source, flags);
      return new Pattern(source, re, re.groupCount(), literalAlternation(source, opts));
    } catch (err) {
      if (err instanceof RE2JSException)
        throw new PatternError(source, explain(err), { cause: err });
      throw err;
    }
  }

  /** Whether the pattern matches anywhere in `s`. */
  test(s: string): boolean {
    if (this.literal) return this.literal.test.test(s);
    return this.re.test(s);
  }

  /**
   * Replaces what the pattern matches with `mask` and counts the replacements. When the pattern
   * has capture groups, only the text of the groups that took part in a match is replaced (so
   * context can be kept without a lookahead: `(?<=token=)(\w+)` or `://[^:]*:([^@]*)@`);
   * otherwise the whole match. Empty matches replace nothing.
   */
  mask(s: string, mask: string): { s: string; n: number } {
    if (this.literal) {
      let n = 0;
      const out = s.replace(this.literal.all, () => {
        n++;
        return mask;
      });
      return { s: n === 0 ? s : out, n };
    }
    // The DFA answers "no match" fast; positions need the slower NFA, so only on a match.
    if (!this.re.test(s)) return { s, n: 0 };
    const m = this.re.matcher(s);
    let out = '';
    let at = 0;
    let n = 0;
    while (m.find()) {
      if (this.groups === 0) {
        const a = m.start();
        const b = m.end();
        if (b <= a) continue;
        out += s.slice(at, a) + mask;
        at = b;
        n++;
        continue;
      }
      for (let g = 1; g <= this.groups; g++) {
        const a = m.start(g);
        const b = m.end(g);
        // Nested or repeated groups can overlap what was already masked: skip those.
        if (a < 0 || b <= a || a < at) continue;
        out += s.slice(at, a) + mask;
        at = b;
        n++;
      }
    }
    return n === 0 ? { s, n } : { s: out + s.slice(at), n };
  }
}

/** Compiles or returns the reason it cannot, for validators that collect problems. */
export function checkPattern(
  source: string,
  opts: PatternOptions = {},
): { ok: true; pattern: Pattern } | { ok: false; error: PatternError } {
  try {
    return { ok: true, pattern: Pattern.compile(source, opts) };
  } catch (err) {
    if (err instanceof PatternError) return { ok: false, error: err };
    throw err;
  }
}

const HINTS: [RegExp, string][] = [
  [/`\(\?[=!]/, 'lookaheads (?=…) and (?!…) are not supported; use a capture group instead'],
  [/escape sequence: `\\[1-9]/, 'backreferences (\\1) are not supported'],
  [/escape sequence: `\\u/, '\\u escapes are not supported; write \\x{…} instead'],
  [/escape sequence: `\\k/, 'named backreferences (\\k<…>) are not supported'],
  [/nested repetition operator: `[*+?]\+/, 'possessive quantifiers (a++) are not supported'],
  [/`\(\?>/, 'atomic groups (?>…) are not supported'],
  [/capture in lookbehind/, 'capture groups inside a lookbehind are not supported'],
  [/repeat count/, 'counted repetition is limited to {1000}'],
];

function explain(err: RE2JSException): string {
  const msg = err.message.replace(/^error parsing regexp: /, '');
  for (const [re, hint] of HINTS) if (re.test(err.message)) return `${hint} (${msg})`;
  return msg;
}

const LITERAL_ALTERNATION = /^[\x20-\x7e]+$/;
const META = /[\\^$.?*+()[\]{}]/;

/** RegExps for a pattern made only of ASCII literals joined by "|", else undefined. */
function literalAlternation(
  source: string,
  opts: PatternOptions,
): { test: RegExp; all: RegExp } | undefined {
  let body = source;
  let ci = opts.caseInsensitive === true;
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    ci = true;
  }
  if (!LITERAL_ALTERNATION.test(body) || META.test(body)) return undefined;
  const alts = body.split('|');
  if (alts.some((a) => a === '')) return undefined;
  const body2 = alts.join('|');
  return { test: new RegExp(body2, ci ? 'i' : ''), all: new RegExp(body2, ci ? 'gi' : 'g') };
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
