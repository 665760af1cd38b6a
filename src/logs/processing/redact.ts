// Redaction: regexes whose matches are replaced by a mask, applied to the body and to string
// attributes before export; attributes whose KEY looks secret are masked as a whole.
// Patterns mask their whole match: use lookarounds ((?<=…), (?=…)) to keep context visible.

export interface RedactionPattern {
  name: string;
  re: RegExp;
  /** Cheap pre-check: the pattern cannot match when this does not. */
  hint?: RegExp;
}

/** Default patterns: bearer tokens, passwords in URLs, secret key=value pairs, JSON secret fields. */
export const DEFAULT_REDACTION_PATTERNS: readonly RedactionPattern[] = [
  {
    name: 'bearer_token',
    re: /(?<=\b(?:[Bb]earer|BEARER)\s+)[A-Za-z0-9\-._~+/]+=*/g,
    hint: /bearer/i,
  },
  {
    name: 'basic_auth',
    re: /(?<=\bAuthorization:\s*Basic\s+)[A-Za-z0-9+/]+=*/gi,
    hint: /basic/i,
  },
  {
    name: 'url_password',
    re: /(?<=\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]+(?=@)/g,
    hint: /:\/\//,
  },
  {
    name: 'secret_pair',
    re: /(?<=\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|apikey)\s*[=:]\s*)(?:"[^"]*"|'[^']*'|[^\s"',;&]+)/gi,
    hint: /pass|pwd|secret|token|key/i,
  },
  {
    name: 'json_secret',
    re: /(?<="[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey)"\s*:\s*")(?:[^"\\]|\\.)*(?=")/gi,
    hint: /pass|pwd|secret|token|key/i,
  },
];

/** Attribute keys whose values are masked entirely (matched case-insensitively). */
export const DEFAULT_SECRET_KEY_PATTERN =
  '(^|[._-])(password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|cookie)$';

export interface RedactorOptions {
  patterns: readonly RedactionPattern[];
  mask: string;
  /** Attribute keys matching this get the mask as value; undefined: none. */
  secretKeys?: RegExp;
}

export class Redactor {
  /** One scan that rejects most lines: the union of the hints (when every pattern has one). */
  private readonly anyHint: RegExp | undefined;
  /** secretKeys verdicts of attribute keys seen (keys repeat line after line); bounded. */
  private readonly keyVerdicts = new Map<string, boolean>();

  constructor(private readonly o: RedactorOptions) {
    const ps = o.patterns;
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
      re.lastIndex = 0;
      v = re.test(k);
      if (this.keyVerdicts.size >= 4096) this.keyVerdicts.clear();
      this.keyVerdicts.set(k, v);
    }
    return v;
  }

  get active(): boolean {
    return this.o.patterns.length > 0 || this.o.secretKeys !== undefined;
  }

  /** The string with every match masked, and how many matches there were. */
  redact(s: string): { s: string; n: number } {
    let n = 0;
    if (this.anyHint && !this.anyHint.test(s)) return { s, n };
    for (const p of this.o.patterns) {
      if (p.hint && !p.hint.test(s)) continue;
      p.re.lastIndex = 0;
      if (!p.re.test(s)) continue;
      p.re.lastIndex = 0;
      s = s.replace(p.re, (m) => {
        if (m.length === 0) return m;
        n++;
        return this.o.mask;
      });
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
 * Compiles a user regex: JavaScript syntax; a leading "(?i)" (Go/PCRE style) means
 * case-insensitive. Throws with a message naming the pattern when it is invalid.
 */
export function compileUserRegex(src: string, global = false): RegExp {
  let flags = global ? 'g' : '';
  let body = src;
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    flags += 'i';
  }
  try {
    return new RegExp(body, flags);
  } catch (err) {
    throw new Error(
      `invalid regular expression ${JSON.stringify(src)}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
