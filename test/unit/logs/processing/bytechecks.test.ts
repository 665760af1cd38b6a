// Default processing decides from a line's bytes that no stage can change it (parser `auto`
// finds plain text, no redaction pattern can match) and then passes the bytes on undecoded.
// These byte checks must never pass a line that the text path would have changed: checked
// against the text path on random lines made of the characters that matter.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { autoMayParse, parseBody } from '../../../../src/logs/processing/body.js';
import { defaultProcessingConfig } from '../../../../src/logs/processing/config.js';
import {
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
