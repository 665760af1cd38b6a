// Issue 6 acceptance 2 (unit level) and 6: JSON / logfmt bodies become severity, body, trace
// context and attributes; hostile inputs never crash and stay bounded.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBody, type BodyLimits } from '../../../../src/logs/processing/body.js';
import { parseLogfmt } from '../../../../src/logs/processing/logfmt.js';
import { severityFrom } from '../../../../src/logs/processing/severity.js';
import { parseTraceparent } from '../../../../src/logs/processing/trace.js';

const limits: BodyLimits = { maxDepth: 4, maxAttributes: 64, maxValueBytes: 4096 };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

function parsed(line: string, mode: 'json' | 'logfmt' | 'auto' = 'auto') {
  const r = parseBody(line, mode, limits);
  if (r.kind !== 'parsed') throw new Error(`not parsed: ${r.kind}`);
  return r.parsed;
}

describe('JSON bodies', () => {
  it('lifts level, msg, trace_id and span_id; other fields become attributes', () => {
    const p = parsed(
      JSON.stringify({
        level: 'warn',
        msg: 'disk almost full',
        trace_id: TRACE,
        span_id: SPAN,
        disk: '/dev/sda',
        pct: 93,
        http: { status: 507 },
      }),
    );
    expect(p.body).toBe('disk almost full');
    expect(p.severity).toEqual({ number: 13, text: 'warn' });
    expect(p.traceId).toBe(TRACE);
    expect(p.spanId).toBe(SPAN);
    expect(p.attributes).toEqual({ disk: '/dev/sda', pct: 93, 'http.status': 507 });
  });

  it('reads pino/bunyan numeric levels, traceId/spanId and traceparent forms', () => {
    expect(
      parsed(`{"level":50,"message":"x","traceId":"${TRACE.toUpperCase()}","spanId":"${SPAN}"}`),
    ).toMatchObject({
      severity: { number: 17, text: 'ERROR' },
      traceId: TRACE,
      spanId: SPAN,
    });
    const tp = parsed(`{"severity":"critical","msg":"y","traceparent":"00-${TRACE}-${SPAN}-01"}`);
    expect(tp).toMatchObject({
      severity: { number: 18 },
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: 1,
    });
    expect(tp.attributes).toEqual({});
  });

  it('rejects invalid and all-zero ids, keeping them as attributes', () => {
    const p = parsed(`{"msg":"z","trace_id":"${'0'.repeat(32)}","span_id":"xyz"}`);
    expect(p.traceId).toBeUndefined();
    expect(p.attributes).toEqual({ trace_id: '0'.repeat(32), span_id: 'xyz' });
    expect(parseTraceparent(`00-${TRACE}-${'0'.repeat(16)}-01`)).toBeUndefined();
    expect(parseTraceparent(`ff-${TRACE}-${SPAN}-01`)).toBeUndefined();
  });

  it('a broken JSON line is reported as failed (shipped unchanged by the processor)', () => {
    expect(parseBody('{"level":"info","msg":"cut off', 'auto', limits).kind).toBe('failed');
    expect(parseBody('{"a":1}', 'logfmt', limits).kind).toBe('failed');
    expect(parseBody('plain text line', 'json', limits).kind).toBe('failed');
    expect(parseBody('plain text line', 'auto', limits).kind).toBe('plain');
    expect(parseBody('{"a":1}', 'none', limits).kind).toBe('plain');
  });

  it('bounds depth, attribute count and value size, counting what was left out', () => {
    const p = parsed(
      JSON.stringify({
        msg: 'm',
        a: { b: { c: { d: { e: { f: 1 } } } } },
        big: 'v'.repeat(10_000),
      }),
    );
    expect(p.attributes['a.b.c.d']).toBe('{"e":{"f":1}}');
    expect(Buffer.byteLength(p.attributes.big as string)).toBe(4096);
    expect(p.truncated).toBe(1);
    const many: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) many[`k${i}`] = i;
    const q = parsed(JSON.stringify(many));
    expect(Object.keys(q.attributes)).toHaveLength(64);
    expect(q.dropped).toBe(10_000 - 64);
  });
});

describe('logfmt bodies', () => {
  it('lifts level, msg and ids; quoted values with escapes', () => {
    const p = parsed(
      `time=2024-01-01T00:00:00Z level=error msg="payment \\"failed\\"\\n again" trace_id=${TRACE} span_id=${SPAN} user=bob`,
    );
    expect(p.format).toBe('logfmt');
    expect(p.body).toBe('payment "failed"\n again');
    expect(p.severity).toEqual({ number: 17, text: 'error' });
    expect(p.traceId).toBe(TRACE);
    expect(p.spanId).toBe(SPAN);
    expect(p.attributes).toEqual({ time: '2024-01-01T00:00:00Z', user: 'bob' });
  });

  it('auto mode only takes lines made of key=value pairs', () => {
    expect(parseBody('GET /index.html status=200', 'auto', limits).kind).toBe('plain');
    expect(parseBody('status=200', 'auto', limits).kind).toBe('plain');
    expect(parseBody('GET /index.html status=200', 'logfmt', limits).kind).toBe('parsed');
    expect(parseBody('a="unterminated', 'logfmt', limits).kind).toBe('failed');
  });

  it('parser: bare keys, invalid escapes kept, = without key rejected', () => {
    expect(parseLogfmt('a=1 flag b="x\\qy"')?.pairs).toEqual([
      ['a', '1'],
      ['flag', true],
      ['b', 'x\\qy'],
    ]);
    expect(parseLogfmt('=oops')).toBeUndefined();
    expect(parseLogfmt('k="v"junk')).toBeUndefined();
  });
});

describe('severity mapping', () => {
  it.each([
    ['trace', 1],
    ['DEBUG', 5],
    ['info', 9],
    ['notice', 10],
    ['warning', 13],
    ['err', 17],
    ['critical', 18],
    ['fatal', 21],
    ['panic', 21],
    [10, 1],
    [20, 5],
    [30, 9],
    [40, 13],
    [50, 17],
    [60, 21],
    [3, 17],
    ['4', 13],
  ] as const)('%s → %i', (v, n) => {
    expect(severityFrom(v)?.number).toBe(n);
  });
  it('unknown levels map to nothing', () => {
    expect(severityFrom('loud')).toBeUndefined();
    expect(severityFrom(1000)).toBeUndefined();
    expect(severityFrom(true)).toBeUndefined();
  });
});

describe('hostile inputs (property tests)', () => {
  const bounded = (line: string, mode: 'json' | 'logfmt' | 'auto') => {
    const r = parseBody(line, mode, limits);
    if (r.kind === 'parsed') {
      const keys = Object.keys(r.parsed.attributes);
      expect(keys.length).toBeLessThanOrEqual(limits.maxAttributes);
      for (const k of keys) {
        expect(Buffer.byteLength(k)).toBeLessThanOrEqual(256);
        const v = r.parsed.attributes[k];
        expect(['string', 'number', 'boolean']).toContain(typeof v);
        if (typeof v === 'string')
          expect(Buffer.byteLength(v)).toBeLessThanOrEqual(limits.maxValueBytes);
        if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
      }
      expect(typeof r.parsed.body).toBe('string');
    }
  };

  it('random JSON values never crash and stay bounded', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 8 }),
        fc.constantFrom<'json' | 'auto' | 'logfmt'>('json', 'auto', 'logfmt'),
        (v, mode) => {
          bounded(JSON.stringify(v), mode);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('random strings and bytes never crash', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('utf8')),
        ),
        fc.constantFrom<'json' | 'auto' | 'logfmt'>('json', 'auto', 'logfmt'),
        (s, mode) => {
          bounded(s, mode);
          bounded(`{${s}}`, mode);
          bounded(`k="${s}" level=${s}`, mode);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('deeply nested JSON, 10,000 keys, huge numbers and invalid escapes', () => {
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    bounded(deep, 'json');
    const deepArr = '{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    bounded(deepArr, 'json');
    const r = parsed(deepArr, 'json');
    expect((r.attributes.a as string).length).toBeLessThanOrEqual(4097);
    const wide =
      '{' + Array.from({ length: 10_000 }, (_, i) => `"k${i}":{"x":${i}}`).join(',') + '}';
    bounded(wide, 'json');
    const huge = parsed(
      '{"n":1e400,"m":-1e400,"i":123456789012345678901234567890,"msg":"x"}',
      'json',
    );
    // Integers beyond 2^53 are not exact: text, never a wrapped-around OTLP int64.
    expect(huge.attributes).toEqual({
      n: 'Infinity',
      m: '-Infinity',
      i: '1.2345678901234568e+29',
    });
    expect(parseBody('{"msg":"bad \\x escape"}', 'json', limits).kind).toBe('failed');
    bounded('a=' + '"\\u12'.repeat(1000), 'logfmt');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 0, max: 3 }),
        (depth, kind) => {
          const open = ['{"a":', '[', '{"a":[', '{"a":{"b":'][kind]!;
          const close = ['}', ']', ']}', '}}'][kind]!;
          bounded(open.repeat(depth) + '"leaf"' + close.repeat(depth), 'auto');
        },
      ),
      { numRuns: 200 },
    );
  });
});
