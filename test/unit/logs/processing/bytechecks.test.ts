// Default processing decides from a line's bytes that no stage can change it (parser `auto`
// finds plain text, no redaction pattern can match) and then passes the bytes on undecoded.
// These byte checks must never pass a line that the text path would have changed: checked
// against the text path on random lines made of the characters that matter.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { autoMayParse, parseBody } from '../../../../src/logs/processing/body.js';
import { defaultProcessingConfig } from '../../../../src/logs/processing/config.js';
import {
  ByteLiterals,
  DEFAULT_REDACTION_PATTERNS,
  literalsRegExp,
  Redactor,
} from '../../../../src/logs/processing/redact.js';
import { buildRedactor, LogProcessor } from '../../../../src/logs/processing/processor.js';
import { newRecord, textOf } from '../../../../src/logs/record.js';
import type { LogRecord } from '../../../../src/logs/types.js';

// Pieces that make JSON, logfmt, secrets and their near misses likely, plus non-ASCII text,
// Unicode blanks and characters whose case folds interestingly (ſ, K (Kelvin), İ).
const PIECES = [
  '{',
  '}',
  '"',
  '=',
  ' ',
  '\t',
  '\u00a0',
  '\u2028',
  '\ufeff',
  'a',
  'key',
  'KEY',
  'Key',
  'ſecret',
  'secret',
  'TOKEN',
  'pass',
  'PaSsWoRd',
  'pwd',
  'bearer ',
  'Bearer abc.def',
  'BASIC',
  'Authorization: Basic dXNlcjpwYXNz',
  '://',
  'http://u:p@h',
  ':/',
  '\u212aey',
  'İ',
  'é',
  '漢字',
  '😀',
  'msg',
  'level=info',
  'x=1',
  '"password":"hunter2"',
  '\\',
  '\n',
  '0',
];
const line = fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((a) => a.join(''));

describe('byte checks of default processing agree with the text path', () => {
  it('autoMayParse is false only for lines parser auto leaves as plain text', () => {
    const limits = { maxDepth: 4, maxAttributes: 64, maxValueBytes: 4096 };
    fc.assert(
      fc.property(line, (s) => {
        if (!autoMayParse(Buffer.from(s))) expect(parseBody(s, 'auto', limits).kind).toBe('plain');
      }),
      { numRuns: 5000 },
    );
    // And it does let the parseable ones through.
    expect(autoMayParse(Buffer.from('  {"msg":"x"}'))).toBe(true);
    expect(autoMayParse(Buffer.from('\tlevel=info msg=x'))).toBe(true);
    expect(autoMayParse(Buffer.from('\u00a0{"msg":"x"}'))).toBe(true);
    expect(autoMayParse(Buffer.from('plain text line'))).toBe(false);
    expect(autoMayParse(Buffer.from(''))).toBe(false);
  });

  it('mayMatchBytes is false only for lines no default pattern masks', () => {
    const red = buildRedactor(defaultProcessingConfig().redaction);
    fc.assert(
      fc.property(line, (s) => {
        if (!red.mayMatchBytes(Buffer.from(s))) expect(red.redact(s).n).toBe(0);
      }),
      { numRuns: 5000 },
    );
    expect(red.mayMatchBytes(Buffer.from('Authorization: Bearer abc'))).toBe(true);
    expect(red.mayMatchBytes(Buffer.from('GET /healthz 200'))).toBe(false);
  });

  it('the literal RegExp over Latin-1 bytes finds exactly what it finds in the decoded text', () => {
    const re = literalsRegExp(DEFAULT_REDACTION_PATTERNS.flatMap((p) => p.literals ?? []));
    fc.assert(
      fc.property(fc.oneof(line, fc.string({ unit: 'binary', maxLength: 40 })), (s) => {
        expect(re.test(Buffer.from(s).toString('latin1'))).toBe(re.test(s));
      }),
      { numRuns: 5000 },
    );
    expect(() => literalsRegExp(['pässword'])).toThrow(/pässword.*printable ASCII/);
  });

  // The byte scan (ByteLiterals) must decide exactly as the literal RegExp on the Latin-1 string
  // of the same range: bodies anywhere in a buffer (the range edges at every alignment of its
  // four-byte steps), literals cut by the edges, every case variant, multi-byte and invalid UTF-8.
  const DEFAULT_LITERALS = [...new Set(DEFAULT_REDACTION_PATTERNS.flatMap((p) => p.literals!))];
  const stringCheck = (re: RegExp, b: Buffer, start: number, end: number): boolean =>
    re.test(b.toString('latin1', start, end));
  /**
   * A literal with the case bit (0x20) of some bytes flipped (other cases of letters, and for ':'
   * or '/' the control bytes 0x1a or 0x0f, which must not match), or cut by a byte at either end.
   */
  const nearLiteral = (l: string): fc.Arbitrary<Buffer> =>
    fc
      .tuple(fc.array(fc.boolean(), { minLength: l.length, maxLength: l.length }), fc.nat(2))
      .map(([flip, cut]) => {
        const b = Buffer.from([...l].map((c, i) => c.charCodeAt(0) ^ (flip[i] ? 0x20 : 0)));
        return cut === 0 ? b : cut === 1 ? b.subarray(1) : b.subarray(0, -1);
      });
  /** A body: pieces of text (secrets, near misses, case variants, UTF-8) and raw bytes. */
  const bodyBytes = fc
    .array(
      fc.oneof(
        line.map((s) => Buffer.from(s)),
        fc.constantFrom(...DEFAULT_LITERALS).chain((l) => nearLiteral(l)),
        fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)),
        // invalid UTF-8: lone continuation bytes, a cut sequence, overlong forms, bytes ≥ 0xf5
        fc.constantFrom(
          ...['80', 'c3', 'e6bc', 'f09f98', 'c0af', 'ff', 'fe', 'ed a080'].map((h) =>
            Buffer.from(h.replace(' ', ''), 'hex'),
          ),
        ),
        // bytes whose values differ from letters' by the case bit ('@' '`', '[' '{', 0x1a ':'…)
        fc.constantFrom(
          ...['@', '`', '[', '{', '^', '~', '\x1a', '\x0f', '\x1f', '\xda', '\xfa'].map((c) =>
            Buffer.from(c, 'latin1'),
          ),
        ),
      ),
      { maxLength: 16 },
    )
    .map((a) => Buffer.concat(a));

  it('the byte scan decides as the literal RegExp on the Latin-1 string, on any range', () => {
    const re = literalsRegExp(DEFAULT_LITERALS);
    const scan = new ByteLiterals(DEFAULT_LITERALS);
    fc.assert(
      fc.property(
        bodyBytes,
        bodyBytes,
        bodyBytes,
        fc.nat(3),
        fc.nat(3),
        (before, body, after, cutStart, cutEnd) => {
          const b = Buffer.concat([before, body, after]);
          // The range may cut into the body by a few bytes from either side.
          const start = Math.min(before.length + cutStart, b.length);
          const end = Math.max(start, before.length + body.length - cutEnd);
          expect(scan.test(b, start, end)).toBe(stringCheck(re, b, start, end));
          expect(scan.test(b)).toBe(stringCheck(re, b, 0, b.length));
        },
      ),
      { numRuns: 10000 },
    );
  });

  it('the byte scan finds every case variant of every literal at every offset and edge', () => {
    const re = literalsRegExp(DEFAULT_LITERALS);
    const scan = new ByteLiterals(DEFAULT_LITERALS);
    let found = 0;
    for (const l of DEFAULT_LITERALS) {
      const letters = [...l].map((c, i) => (/[a-z]/i.test(c) ? i : -1)).filter((i) => i >= 0);
      for (let v = 0; v < 1 << letters.length; v++) {
        const chars = [...l];
        letters.forEach((i, k) => {
          if (v & (1 << k)) chars[i] = chars[i]!.toUpperCase();
        });
        const lit = chars.join('');
        for (let q = 0; q < 8; q++) {
          // Filler that is no literal's byte ('x' and a multi-byte character), the literal at q.
          const b = Buffer.concat([
            Buffer.from('xé'.repeat(4)).subarray(0, q),
            Buffer.from(lit, 'latin1'),
            Buffer.from('xxxxx'),
          ]);
          for (let start = Math.max(0, q - 3); start <= q + 1; start++)
            for (let end = q + l.length - 2; end <= q + l.length + 3; end++) {
              // Found exactly when the range holds the whole literal.
              const want = start <= q && end >= q + l.length;
              expect(stringCheck(re, b, start, end)).toBe(want);
              expect(scan.test(b, start, end), `${lit} at ${q} in [${start}, ${end})`).toBe(want);
              if (want) found++;
            }
        }
      }
    }
    expect(found).toBeGreaterThan(1000);
  });

  it('the byte scan agrees with the literal RegExp for other literal sets too', () => {
    // Literals and bodies over an alphabet of letters and the bytes one case bit away from them.
    const alphabet = [...'abKk:/@`[{^~x\x1a\xe9\xc3\xa9'];
    const lit = fc
      .array(fc.constantFrom(...alphabet.filter((c) => c < '\x7f' && c >= ' ')), {
        minLength: 3,
        maxLength: 6,
      })
      .map((a) => a.join(''));
    const char = fc.constantFrom(...alphabet).map((c) => Buffer.from(c, 'latin1'));
    // A literal set (more than eight share a bit of the pair table), and bodies of characters
    // and near variants of its literals.
    const setAndBody = fc.array(lit, { minLength: 1, maxLength: 12 }).chain((lits) =>
      fc.tuple(
        fc.constant(lits),
        fc
          .array(fc.oneof(char, fc.constantFrom(...lits).chain(nearLiteral)), { maxLength: 16 })
          .map((a) => Buffer.concat(a)),
      ),
    );
    fc.assert(
      fc.property(setAndBody, fc.nat(6), fc.nat(6), ([lits, b], a, z) => {
        const start = Math.min(a, b.length);
        const end = Math.max(start, b.length - z);
        expect(new ByteLiterals(lits).test(b, start, end)).toBe(
          stringCheck(literalsRegExp(lits), b, start, end),
        );
      }),
      { numRuns: 5000 },
    );
    expect(() => new ByteLiterals(['ab'])).toThrow(/"ab".*at least 3 bytes/);
    expect(() => new ByteLiterals(['pässword'])).toThrow(/pässword.*printable ASCII/);
  });

  it('a redactor with a pattern that has no literals always takes the text path', () => {
    const red = new Redactor({
      patterns: [{ name: 'custom_0', re: DEFAULT_REDACTION_PATTERNS[0]!.re }],
      mask: '***',
    });
    expect(red.mayMatchBytes(Buffer.from('plain'))).toBe(true);
    expect(new Redactor({ patterns: [], mask: '***' }).mayMatchBytes(Buffer.from('x'))).toBe(false);
  });

  it('default processing gives the same record for a byte body as for the same text', () => {
    const proc = new LogProcessor(defaultProcessingConfig());
    const out: LogRecord[] = [];
    const c = proc.forContainer({}, { emit: (r) => out.push(r) }, 'c');
    const resource = { key: 'c', attributes: {} };
    fc.assert(
      fc.property(line, (s) => {
        out.length = 0;
        c.push(newRecord(resource, 'stdout', Buffer.from(s), 1, 0, 0, undefined));
        c.push(newRecord(resource, 'stdout', s, 1, 0, 0, undefined));
        expect(out).toHaveLength(2);
        const [a, b] = out as [LogRecord, LogRecord];
        expect(textOf(a)).toBe(textOf(b));
        expect({ ...a, body: undefined }).toEqual({ ...b, body: undefined });
      }),
      { numRuns: 3000 },
    );
  });

  it('a plain line is passed on as the bytes that were read; a secret is still masked', () => {
    const proc = new LogProcessor(defaultProcessingConfig());
    const out: LogRecord[] = [];
    const c = proc.forContainer({}, { emit: (r) => out.push(r) }, 'c');
    const resource = { key: 'c', attributes: {} };
    const plain = Buffer.from('GET /healthz 200 1.2ms');
    c.push(newRecord(resource, 'stdout', plain, 1, 0, 0, undefined));
    c.push(newRecord(resource, 'stdout', Buffer.from('login token=abc123'), 1, 0, 0, undefined));
    expect(out[0]!.body).toBe(plain);
    expect(textOf(out[1]!)).toBe('login token=***');
  });
});
