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
   * none of these ASCII literals (compared ignoring ASCII case; each at least 3 bytes). Lets a
   * line that cannot match be passed without decoding it to text.
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
 * no decoding). Non-ASCII bytes become characters U+0080..U+00FF, which never fold to ASCII
 * letters under the `i` flag (without `u`), so this finds a literal exactly where the same RegExp
 * would find it in the decoded UTF-8 text. The definition ByteLiterals is checked against (tests).
 */
export function literalsRegExp(literals: readonly string[]): RegExp {
  for (const l of literals) checkLiteral(l);
  return new RegExp(literals.map((l) => l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'i');
}

function checkLiteral(l: string): void {
  if (l.length === 0 || !/^[\x20-\x7e]+$/.test(l))
    throw new Error(`literal ${JSON.stringify(l)}: expected printable ASCII`);
}

/**
 * Finds any of a set of ASCII literals (ignoring ASCII case) in bytes, without making a string:
 * the same decision as literalsRegExp on the Latin-1 string of the range (bytes ≥ 0x80 never fold
 * to ASCII, so UTF-8 text, valid or not, needs no decoding).
 *
 * Every literal is at least 3 bytes, so each occurrence contains a byte pair at an even distance
 * from the range start that is its first two or its second and third bytes. The scan reads four
 * bytes at a time (one DataView word) and looks its two pairs up in a 128 KiB table: per pair, the
 * literals that may start at it (low byte) and one byte before it (high byte), one bit per literal
 * (literals after the eighth share the last bit). Only those literals are then compared. About
 * half the CPU of the Latin-1 string and RegExp, and nothing allocated per line.
 */
export class ByteLiterals {
  /** Per literal set: the pair table, and the same indexed little-endian (pairsLE). */
  private static readonly tables = new Map<string, { be: Uint16Array; le: Uint16Array }>();
  /** Lower-case literals; their bytes are compared as (byte | mask) === literal byte. */
  private readonly lits: Uint8Array[];
  /** Per literal: 0x20 at letters (either case matches), 0 elsewhere (exact). */
  private readonly masks: Uint8Array[];
  private readonly pairs: Uint16Array;
  /**
   * The same table indexed by a pair as the low half of a little-endian word (first byte low):
   * the json-file decoder looks the pairs of the body it writes up in it (pairHits in
   * src/logs/jsonfile.ts), so that a line with no pair of any literal needs no scan here.
   */
  readonly pairsLE: Uint16Array;
  /** The last buffer scanned and a DataView of it (bodies come many to a slab). */
  private lastBuf: Uint8Array | undefined;
  private lastView: DataView | undefined;

  constructor(literals: readonly string[]) {
    for (const l of literals) {
      checkLiteral(l);
      if (l.length < 3) throw new Error(`literal ${JSON.stringify(l)}: expected at least 3 bytes`);
    }
    const lower = [...new Set(literals.map((l) => l.toLowerCase()))].sort();
    if (lower.length === 0) throw new Error('ByteLiterals: expected at least one literal');
    this.lits = lower.map((l) => Buffer.from(l, 'latin1'));
    this.masks = this.lits.map((l) => l.map((c) => (c >= 0x61 && c <= 0x7a ? 0x20 : 0)));
    const key = lower.join('\n');
    let made = ByteLiterals.tables.get(key);
    if (!made) {
      const t = new Uint16Array(65536);
      // Each case variant of a literal's first two bytes (low byte) and of its second and third
      // (high byte).
      const cases = (c: number): number[] => (c >= 0x61 && c <= 0x7a ? [c, c - 0x20] : [c]);
      this.lits.forEach((l, j) => {
        const bit = 1 << Math.min(j, 7);
        for (const x of cases(l[0]!)) for (const y of cases(l[1]!)) t[(x << 8) | y]! |= bit;
        for (const x of cases(l[1]!)) for (const y of cases(l[2]!)) t[(x << 8) | y]! |= bit << 8;
      });
      const le = new Uint16Array(65536);
      for (let x = 0; x < 65536; x++) le[((x & 0xff) << 8) | (x >>> 8)] = t[x]!;
      made = { be: t, le };
      ByteLiterals.tables.set(key, made);
    }
    this.pairs = made.be;
    this.pairsLE = made.le;
  }

  /** True when b[start, end) contains one of the literals (ignoring ASCII case). */
  test(b: Uint8Array, start = 0, end = b.length): boolean {
    if (b !== this.lastBuf) {
      this.lastBuf = b;
      this.lastView = new DataView(b.buffer, b.byteOffset, b.length);
    }
    const dv = this.lastView!;
    const t = this.pairs;
    let p = start;
    for (; p + 4 <= end; p += 4) {
      const w = dv.getUint32(p);
      const v1 = t[w >>> 16]!;
      const v2 = t[w & 0xffff]!;
      if ((v1 | v2) === 0) continue;
      if ((v1 & 0xff) !== 0 && this.at(b, p, end, v1 & 0xff)) return true;
      if (v1 > 0xff && p > start && this.at(b, p - 1, end, v1 >>> 8)) return true;
      if ((v2 & 0xff) !== 0 && this.at(b, p + 2, end, v2 & 0xff)) return true;
      if (v2 > 0xff && this.at(b, p + 1, end, v2 >>> 8)) return true;
    }
    // At most three bytes are left: one more pair at p (a pair at p + 2 would end at the range end).
    if (p + 1 < end) {
      const v = t[(b[p]! << 8) | b[p + 1]!]!;
      if ((v & 0xff) !== 0 && this.at(b, p, end, v & 0xff)) return true;
      if (v > 0xff && p > start && this.at(b, p - 1, end, v >>> 8)) return true;
    }
    return false;
  }

  /** Whether one of the literals in `bits` starts at b[i] and ends by `end`. */
  private at(b: Uint8Array, i: number, end: number, bits: number): boolean {
    const lits = this.lits;
    for (let j = 0; j < lits.length; j++) {
      if ((bits & (1 << (j < 7 ? j : 7))) === 0) continue;
      const l = lits[j]!;
      const n = l.length;
      if (i + n > end) continue;
      const m = this.masks[j]!;
      let k = 0;
      while (k < n && (b[i + k]! | m[k]!) === l[k]) k++;
      if (k === n) return true;
    }
    return false;
  }
}

export class Redactor {
  /** One scan that rejects most lines: the union of the hints (when every pattern has one). */
  private readonly anyHint: RegExp | undefined;
  /** secretKeys verdicts of attribute keys seen (keys repeat line after line); bounded. */
  private readonly keyVerdicts = new Map<string, boolean>();
  /** The union of the patterns' literals, when every pattern has some; undefined: no byte check. */
  private readonly anyLiteral: ByteLiterals | undefined;

  constructor(private readonly o: RedactorOptions) {
    const ps = o.patterns;
    if (ps.length > 0 && ps.every((p) => p.literals && p.literals.length > 0))
      this.anyLiteral = new ByteLiterals(ps.flatMap((p) => p.literals!));
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
  mayMatchBytes(
    b: Buffer,
    start = 0,
    end = b.length,
    /** The decoder's look-up of every pair at an even offset of the range in `pairs`. */
    pairs?: Uint16Array,
    pairHits = -1,
  ): boolean {
    if (this.o.patterns.length === 0) return false;
    if (this.anyLiteral === undefined) return true;
    // No pair of any literal at an even offset: no literal (see ByteLiterals), no scan.
    if (pairHits === 0 && pairs === this.anyLiteral.pairsLE) return false;
    return this.anyLiteral.test(b, start, end);
  }

  /** The pair table a decoder may look a body's pairs up in (mayMatchBytes), if any. */
  get literalPairs(): Uint16Array | undefined {
    return this.o.patterns.length === 0 ? undefined : this.anyLiteral?.pairsLE;
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
