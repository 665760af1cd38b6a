// Issue 16 acceptance 1 (unit level): user patterns compile on the linear-time engine; what it
// cannot take is rejected with a message naming the pattern and the construct; masking keeps
// context through lookbehinds or capture groups.
import { describe, expect, it } from 'vitest';
import { Pattern, PatternError, checkPattern } from '../../../src/util/pattern.js';

// Classic catastrophic-backtracking shapes and lines crafted to trigger them. With RegExp each
// of these takes longer than the test timeout (2^n steps); the linear engine answers at once.
const CATASTROPHIC: { pattern: string; line: string; matches: boolean }[] = [
  { pattern: '^(a+)+$', line: `${'a'.repeat(40)}!`, matches: false },
  { pattern: '^(a|aa)+$', line: `${'a'.repeat(60)}!`, matches: false },
  { pattern: '^(a|a?)+$', line: `${'a'.repeat(40)}!`, matches: false },
  { pattern: '^(\\w+\\s?)*$', line: `${'word '.repeat(20)}!`, matches: false },
  { pattern: '^(.*a){20}$', line: 'a'.repeat(40), matches: true },
  { pattern: '^([a-zA-Z0-9]+\\.)+[a-z]{2,}@$', line: `${'a.'.repeat(30)}1`, matches: false },
];

describe('Pattern', () => {
  it.each(CATASTROPHIC)(
    '$pattern on a crafted line answers correctly',
    ({ pattern, line, matches }) => {
      expect(Pattern.compile(pattern).test(line)).toBe(matches);
      expect(Pattern.compile(pattern).mask(line, '*').n > 0).toBe(matches && line.length > 0);
    },
  );

  it.each([
    ['(?=x)a', 'lookaheads'],
    ['a(?!x)', 'lookaheads'],
    ['(a)\\1', 'backreferences'],
    ['(?<n>a)\\k<n>', 'named backreferences'],
    ['a++', 'possessive'],
    ['(?>a)', 'atomic groups'],
    ['\\u00e9', '\\x{…}'],
    ['(?<=(a))b', 'capture groups inside a lookbehind'],
    ['a{1001}', '{1000}'],
    ['[a-', 'missing closing ]'],
  ])('rejects %s naming the pattern and the construct', (src, what) => {
    const r = checkPattern(src);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBeInstanceOf(PatternError);
    expect(r.error.message).toContain(JSON.stringify(src));
    expect(r.error.message).toContain(what);
  });

  it('rejects patterns longer than 4096 characters before compiling', () => {
    expect(() => Pattern.compile('a'.repeat(4097))).toThrow(/longer than 4096/);
  });

  it('takes common JavaScript syntax: classes, \\b, named groups, (?i), lookbehinds, \\/', () => {
    expect(Pattern.compile('(?i)^error\\b').test('ERROR: x')).toBe(true);
    expect(Pattern.compile('(?<year>\\d{4})-\\d\\d').test('on 2024-05')).toBe(true);
    expect(Pattern.compile('(?<=id=)\\d+').mask('id=42 x=7', '#').s).toBe('id=# x=7');
    expect(Pattern.compile('(?<!x)y').test('xy')).toBe(false);
    expect(Pattern.compile('GET \\/healthz').test('GET /healthz 200')).toBe(true);
    expect(Pattern.compile('abc', { caseInsensitive: true }).test('xABCx')).toBe(true);
  });

  it('masks the whole match, or only the capture groups when there are any', () => {
    expect(Pattern.compile('\\d{3}-\\d{4}').mask('call 555-1234 or 555-9876', '***')).toEqual({
      s: 'call *** or ***',
      n: 2,
    });
    expect(Pattern.compile('ssn=(\\d+);').mask('a ssn=123; b ssn=456;', '***')).toEqual({
      s: 'a ssn=***; b ssn=***;',
      n: 2,
    });
    // Unmatched optional groups and empty matches mask nothing.
    expect(Pattern.compile('k(?:=(\\w+))?').mask('k k=v', '*').s).toBe('k k=*');
    expect(Pattern.compile('x*').mask('abc', '*')).toEqual({ s: 'abc', n: 0 });
    // Offsets are string offsets, also after multi-byte characters.
    expect(Pattern.compile('(?<=pw=)\\w+').mask('日本é pw=abc', '*').s).toBe('日本é pw=*');
  });
});

describe('literal alternations', () => {
  it('answer exactly as the RE2 engine does (property)', async () => {
    const fc = await import('fast-check');
    const { RE2JS } = await import('re2js');
    const word = fc.stringMatching(/^[a-zA-Z0-9 /_:=-]{1,6}$/);
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.array(fc.oneof(word, fc.constantFrom('x', 'A', ' ')), { maxLength: 12 }),
        (alts, ci, parts) => {
          const src = `${ci ? '(?i)' : ''}${alts.join('|')}`;
          const input = parts.join('');
          const p = Pattern.compile(src);
          const re = RE2JS.compile(src);
          expect(p.test(input)).toBe(re.test(input));
          expect(p.mask(input, '#').s).toBe(re.matcher(input).replaceAll('#'));
        },
      ),
      { numRuns: 300 },
    );
  });
});
