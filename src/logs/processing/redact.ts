// Redaction: regexes whose matches are replaced by a mask, applied to the body and to string
// attributes before export; attributes whose KEY looks secret are masked as a whole.
// Patterns mask their whole match, or only their capture groups when they have any; a lookbehind
// (?<=…) or a group keeps context visible. They run on the linear-time engine (util/pattern.ts).
import { Pattern } from '../../util/pattern.js';

export interface RedactionPattern {
  name: string;
  re: Pattern;
  /** Cheap pre-check: the pattern cannot match when this does not. */
  hint?: RegExp;
  /**
   * Byte pre-check, the same as `hint` for bytes: the pattern cannot match a text that contains
   * none of these ASCII literals (compared ignoring ASCII case). Lets a line that cannot match be
   * passed without decoding it to text.
   */
  literals?: readonly string[];
}

/** Default patterns: bearer tokens, passwords in URLs, secret key=value pairs, JSON secret fields. */
// Written with capture groups (only the group is masked) rather than lookbehinds: the engine
// runs lookbehinds an order of magnitude slower (bench/patterns.ts).
export const DEFAULT_REDACTION_PATTERNS: readonly RedactionPattern[] = [
  {
    name: 'bearer_token',
    re: Pattern.compile('\\b(?:[Bb]earer|BEARER)\\s+([A-Za-z0-9\\-._~+/]+=*)'),
    hint: /bearer/i,
    literals: ['bearer'],
  },
  {
    name: 'basic_auth',
    re: Pattern.compile('\\bAuthorization:\\s*Basic\\s+([A-Za-z0-9+/]+=*)', {
      caseInsensitive: true,
    }),
    hint: /basic/i,
    literals: ['basic'],
  },
  {
    name: 'url_password',
    re: Pattern.compile('\\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s:@/]*:([^\\s@/]+)@'),
    hint: /:\/\//,
    literals: ['://'],
  },
  {
    name: 'secret_pair',
    re: Pattern.compile(
      '\\b[\\w.-]*(?:password|passwd|secret|token|api[_-]?key|apikey)\\s*[=:]\\s*("[^"]*"|\'[^\']*\'|[^\\s"\',;&]+)',
      { caseInsensitive: true },
    ),
    hint: /pass|pwd|secret|token|key/i,
    literals: ['pass', 'pwd', 'secret', 'token', 'key'],
  },
  {
    name: 'json_secret',
    re: Pattern.compile(
      '"[\\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey)"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"',
      { caseInsensitive: true },
    ),
    hint: /pass|pwd|secret|token|key/i,
    literals: ['pass', 'pwd', 'secret', 'token', 'key'],
  },
];

/** Attribute keys whose values are masked entirely (matched case-insensitively). */
export const DEFAULT_SECRET_KEY_PATTERN =
  '(^|[._-])(password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|cookie)$';

export interface RedactorOptions {
  patterns: readonly RedactionPattern[];
  mask: string;
  /** Attribute keys matching this get the mask as value; undefined: none. */
  secretKeys?: Pattern;
}

/**
 * A case-insensitive RegExp of ASCII literals, for bytes read as Latin-1 (one character per byte,
 * no decoding: the cheapest string V8 makes from bytes). Non-ASCII bytes become characters
 * U+0080..U+00FF, which never fold to ASCII letters under the `i` flag (without `u`), so this
 * finds a literal exactly where the same RegExp would find it in the decoded UTF-8 text.
 */
export function literalsRegExp(literals: readonly string[]): RegExp {
  for (const l of literals)
    if (l.length === 0 || !/^[\x20-\x7e]+$/.test(l))
      throw new Error(`literal ${JSON.stringify(l)}: expected printable ASCII`);
  return new RegExp(literals.map((l) => l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'i');
}

export class Redactor {
  /** One scan that rejects most lines: the union of the hints (when every pattern has one). */
  private readonly anyHint: RegExp | undefined;
  /** secretKeys verdicts of attribute keys seen (keys repeat line after line); bounded. */
  private readonly keyVerdicts = new Map<string, boolean>();
  /** The union of the patterns' literals, when every pattern has some; undefined: no byte check. */
  private readonly anyLiteral: RegExp | undefined;

  constructor(private readonly o: RedactorOptions) {
    const ps = o.patterns;
    if (ps.length > 0 && ps.every((p) => p.literals && p.literals.length > 0))
      this.anyLiteral = literalsRegExp([...new Set(ps.flatMap((p) => p.literals!))]);
    if (ps.length > 0 && ps.every((p) => p.hint && p.hint.flags.replace('i', '') === '')) {
      const ci = ps.some((p) => p.hint!.flags.includes('i'));
      // A case-sensitive hint in a case-insensitive union only lets more lines through.
      this.anyHint = new RegExp(ps.map((p) => `(?:${p.hint!.source})`).join('|'), ci ? 'i' : '');
    }
  }

  private secretKey(k: string): boolean {
    const re = this.o.secretKeys;
    if (!re) return false;
    let v = this.keyVerdicts.get(k);
    if (v === undefined) {
      v = re.test(k);
      if (this.keyVerdicts.size >= 4096) this.keyVerdicts.clear();
      this.keyVerdicts.set(k, v);
    }
    return v;
  }

  get active(): boolean {
    return this.o.patterns.length > 0 || this.o.secretKeys !== undefined;
  }

  /**
   * False when no pattern can match the text these UTF-8 bytes decode to (a body without
   * attributes can then be passed on as bytes); true when one might, or when a pattern has no
   * byte check.
   */
  mayMatchBytes(b: Buffer, start = 0, end = b.length): boolean {
    if (this.o.patterns.length === 0) return false;
    return this.anyLiteral === undefined || this.anyLiteral.test(b.toString('latin1', start, end));
  }

  /** The string with every match masked, and how many matches there were. */
  redact(s: string): { s: string; n: number } {
    let n = 0;
    if (this.anyHint && !this.anyHint.test(s)) return { s, n };
    for (const p of this.o.patterns) {
      if (p.hint && !p.hint.test(s)) continue;
      const r = p.re.mask(s, this.o.mask);
      s = r.s;
      n += r.n;
    }
    return { s, n };
  }

  /** Masks body and string attributes in place; returns the number of masked items. */
  apply(rec: { body: string; attributes: Record<string, string | number | boolean> }): number {
    let total = 0;
    const b = this.redact(rec.body);
    if (b.n > 0) {
      rec.body = b.s;
      total += b.n;
    }
    for (const k of Object.keys(rec.attributes)) {
      const v = rec.attributes[k];
      if (this.secretKey(k)) {
        if (v !== this.o.mask) {
          rec.attributes[k] = this.o.mask;
          total++;
        }
        continue;
      }
      if (typeof v !== 'string') continue;
      const r = this.redact(v);
      if (r.n > 0) {
        rec.attributes[k] = r.s;
        total += r.n;
      }
    }
    return total;
  }
}

/**
 * Compiles a user pattern on the linear-time engine (util/pattern.ts): RE2 syntax; a leading
 * "(?i)" means case-insensitive. Throws PatternError naming the pattern and what is unsupported.
 */
export function compileUserRegex(src: string): Pattern {
  return Pattern.compile(src);
}
