import { ProtobufLogsSerializer, JsonLogsSerializer } from '@opentelemetry/otlp-transformer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeLogsRequest } from '../../../src/exporters/otlp-logs-encode.js';
import { toSdkLogRecords } from '../../../src/exporters/otlp-logs.js';
import {
  decodeJsonFileLine,
  decodeJsonFileLineInto,
  decodedBytes,
  encodeJsonFileLine,
  parseTimeBytes,
} from '../../../src/logs/jsonfile.js';
import { AckTracker } from '../../../src/logs/ack.js';
import { ByteLiterals, DEFAULT_REDACTION_PATTERNS } from '../../../src/logs/processing/redact.js';
import { newRecordFromBytes } from '../../../src/logs/record.js';
import type { LogRecord, LogResource } from '../../../src/logs/types.js';
import { attrs, decodeOtlp, type ExportLogsServiceRequest } from '../../support/otlp-receiver.js';

function decode(line: string) {
  const b = Buffer.from(line.replace(/\n$/, ''), 'utf8');
  return decodeJsonFileLine(b, 0, b.length);
}

describe('json-file decoding', () => {
  it('keeps nanosecond precision of Docker timestamps', () => {
    const d = decode(encodeJsonFileLine('hello\n', 'stderr', '2024-05-01T12:34:56.123456789Z'));
    expect(d).toMatchObject({ complete: true, stream: 'stderr', timeNanos: 123456789 });
    expect(d?.timeSec).toBe(Date.UTC(2024, 4, 1, 12, 34, 56) / 1000);
    expect(d?.body.toString()).toBe('hello');
    const t = { sec: 0, nanos: 0 };
    const b = Buffer.from('2024-05-01T14:34:56.5+02:00');
    expect(parseTimeBytes(b, 0, b.length, t)).toBe(true);
    expect(t).toEqual({ sec: Date.UTC(2024, 4, 1, 12, 34, 56) / 1000, nanos: 500_000_000 });
  });

  it('parses any timestamp alike whether its seconds prefix was seen before or not', () => {
    // parseTimeBytes keeps the seconds of the last prefix: runs of timestamps sharing a prefix,
    // other offsets and fractions, and broken ones in between must all come out right.
    const stamp = fc.record({
      ms: fc.integer({ min: 0, max: 253402300799999 }),
      frac: fc.stringMatching(/^[0-9]{0,12}$/),
      off: fc.option(fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }), { nil: undefined }),
      broken: fc.constantFrom(undefined, 4, 10, 13, 17, 18),
      // with a DataView of the buffer (the decoder's word compares) or without
      withView: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(stamp, fc.integer({ min: 1, max: 3 })), { maxLength: 20 }),
        (xs) => {
          for (const [x, repeat] of xs) {
            const iso = new Date(x.ms).toISOString().slice(0, 19);
            const zone =
              x.off === undefined
                ? 'Z'
                : `${x.off < 0 ? '-' : '+'}${String(Math.floor(Math.abs(x.off) / 60)).padStart(2, '0')}:${String(Math.abs(x.off) % 60).padStart(2, '0')}`;
            let text = `${iso}${x.frac ? `.${x.frac}` : ''}${zone}`;
            if (x.broken !== undefined)
              text = `${text.slice(0, x.broken)}x${text.slice(x.broken + 1)}`;
            const b = Buffer.from(`"time":"${text}"`);
            for (let k = 0; k < repeat; k++) {
              const t = { sec: -1, nanos: -1 };
              const view = new DataView(b.buffer, b.byteOffset, b.length);
              const ok = parseTimeBytes(b, 8, b.length - 1, t, x.withView ? view : undefined);
              if (x.broken !== undefined) {
                expect(ok).toBe(false);
                continue;
              }
              expect(ok).toBe(true);
              expect(t.sec).toBe(Math.floor(x.ms / 1000) - (x.off ?? 0) * 60);
              expect(t.nanos).toBe(Number(x.frac.slice(0, 9).padEnd(9, '0')));
            }
          }
        },
      ),
    );
  });

  it('finds the end of a record itself only where it is right (times of any length, junk between)', () => {
    // The tailer's runs decode with the end unknown: the decoder looks for the record's `"}` and
    // newline where the last time string ended first. It must never take another place for the
    // end: it either decides (the record's real end, the same fields as a decode with the end) or
    // leaves the line to the caller (false).
    const times = [
      '2024-05-01T12:34:56.123456789Z',
      // a byte shorter than the one before (Docker drops trailing zeros): tried second
      '2024-05-01T12:34:56.12345678Z',
      '2024-05-01T12:34:56.1234567Z',
      '2024-05-01T12:34:56Z',
      '2024-05-01T12:34:56.123456789+01:00',
      '2024-05-01T12:34:56.5-07:30',
    ];
    const piece = fc.oneof(
      fc
        .tuple(fc.constantFrom(...times), fc.string({ maxLength: 12 }), fc.boolean())
        .map(([t, body, err]) => encodeJsonFileLine(`${body}\n`, err ? 'stderr' : 'stdout', t)),
      // junk lines, among them short records right after a short time: the guess then lands
      // on their `"}` and newline
      fc.constantFrom(
        '{"log":"abcd"}\n',
        '{"log":"x"}\n',
        '"}\n',
        'not json\n',
        '{"log":"a\\n"}\n',
      ),
    );
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 12 }), (pieces) => {
        const buf = Buffer.from(pieces.join(''), 'utf8');
        const d = decodedBytes();
        const k = decodedBytes();
        let s = 0;
        while (s < buf.length) {
          const nl = buf.indexOf(10, s);
          if (decodeJsonFileLineInto(buf, s, -1, d, 40, 35)) {
            expect(d.recordEnd).toBe(nl);
            expect(decodeJsonFileLineInto(buf, s, nl, k)).toBe(true);
            expect(d.src.subarray(d.start, d.end)).toEqual(k.src.subarray(k.start, k.end));
            expect([d.stream, d.timeSec, d.timeNanos, d.complete]).toEqual([
              k.stream,
              k.timeSec,
              k.timeNanos,
              k.complete,
            ]);
          }
          s = nl + 1;
        }
      }),
      { numRuns: 400 },
    );
  });

  it('marks records without a trailing newline as partial and keeps attrs', () => {
    const d = decode(encodeJsonFileLine('abc', 'stdout', '2024-05-01T12:34:56Z', { tag: 'x' }));
    expect(d).toMatchObject({
      complete: false,
      stream: 'stdout',
      attrs: { tag: 'x' },
      timeNanos: 0,
    });
  });

  it('decodes any string exactly like JSON.parse (fast and slow paths agree)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.boolean(),
        fc.constantFrom('stdout', 'stderr'),
        (s, nl, stream) => {
          if (!nl && s.endsWith('\n')) return; // a log ending in \n is a complete record
          const log = nl ? `${s}\n` : s;
          const d = decode(encodeJsonFileLine(log, stream, '2023-01-02T03:04:05.000000001Z'));
          expect(d).toBeDefined();
          expect(d!.body.toString('utf8')).toBe(nl ? s : s);
          expect(d!.complete).toBe(nl);
          expect(d!.stream).toBe(stream);
        },
      ),
    );
  });

  it('looks up the redaction literals while copying: no literal is ever missed (property)', () => {
    // The decoder ORs the pair table's entries of every byte pair at an even offset of the body
    // it writes; a line whose result is 0 skips the literal scan (Redactor.mayMatchBytes). Bodies
    // mix the default literals in any case, escapes, non-ASCII and control bytes at any offset;
    // whenever the scan finds a literal in the decoded body, the look-up must not be 0.
    const lits = new ByteLiterals(DEFAULT_REDACTION_PATTERNS.flatMap((p) => p.literals ?? []));
    const piece = fc.oneof(
      fc.constantFrom(
        'bearer',
        'Basic',
        '://',
        'PASS',
        'pwd',
        'SeCrEt',
        'token',
        'kEy',
        'ke',
        'pa',
      ),
      fc.constantFrom('"', '\\', '\n', '\t', '/', 'é', '\u0001', ' ', 'x'),
      fc.string({ maxLength: 5 }),
    );
    let skipped = 0;
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 14 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        fc.boolean(),
        (pieces, nl, reserve, knownEnd, slashes) => {
          const log = pieces.join('') + (nl ? '\n' : '');
          let line = encodeJsonFileLine(log, 'stdout', '2023-01-02T03:04:05.000000001Z');
          // `\/` is valid JSON for `/` (Docker does not write it; another writer may): the
          // literal `://` then has an escaped byte
          if (slashes) line = line.replaceAll('/', '\\/');
          const b = Buffer.from(line);
          const out = decodedBytes();
          out.pairs = lits.pairsLE;
          const end = knownEnd ? b.length - 1 : -1;
          if (!decodeJsonFileLineInto(b, 0, end, out, reserve, 40)) return;
          const found = lits.test(out.src, out.start, out.end);
          if (out.pairHits === -1) return; // not looked up (the JSON.parse path): scanned instead
          if (found) expect(out.pairHits, JSON.stringify(log)).not.toBe(0);
          else if (out.pairHits === 0) skipped++;
          // the same line decoded without a table is not looked up
          const plain = decodedBytes();
          if (decodeJsonFileLineInto(b, 0, end, plain, reserve, 40))
            expect(plain.pairHits).toBe(-1);
        },
      ),
      { numRuns: 3000 },
    );
    // (most bodies without a literal skip the scan: the look-up is not always "maybe")
    expect(skipped).toBeGreaterThan(100);
  });

  it('rejects malformed records', () => {
    for (const bad of [
      '{"log":"x',
      'not json',
      '{"log":1,"stream":"stdout","time":"2024-01-01T00:00:00Z"}',
      '\u0000\u0001\u00ff',
      '{"log":"x\\n","stream":"stdin","time":"2024-01-01T00:00:00Z"}',
    ])
      expect(decode(bad)).toBeUndefined();
  });

  it('turns invalid UTF-8 into replacement characters instead of passing it through', () => {
    const raw = Buffer.concat([
      Buffer.from('{"log":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('b\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}'),
    ]);
    const d = decodeJsonFileLine(raw, 0, raw.length);
    expect(d?.body.toString()).toBe('a\ufffd\ufffdb');
  });

  it('returns bodies that stay intact while the read buffer and later records are decoded', () => {
    // Bodies are copied out into shared slabs: decoding more records (including ones that fall
    // back to JSON.parse or are malformed) and reusing the read buffer must not touch them.
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(
              fc.string({ unit: 'binary', maxLength: 300 }),
              fc.string({ unit: fc.constantFrom('a', '"', '\\', '\t', 'é'), maxLength: 6000 }),
            ),
            fc.boolean(),
            fc.boolean(),
          ),
          { maxLength: 60 },
        ),
        (items) => {
          const kept: { body: Buffer; want: string }[] = [];
          const buf = Buffer.alloc(1 << 16);
          for (const [s, nl, broken] of items) {
            let line = encodeJsonFileLine(nl ? `${s}\n` : s, 'stdout', '2024-01-01T00:00:00Z');
            line = line.replace(/\n$/, '');
            if (broken) line = line.slice(0, -3); // malformed: no stream/time end
            const raw = Buffer.from(line, 'utf8');
            const big = raw.length > buf.length ? Buffer.alloc(raw.length) : buf;
            raw.copy(big);
            const d = decodeJsonFileLine(big, 0, raw.length);
            big.fill(0x41, 0, raw.length); // the read buffer is reused
            if (broken) {
              expect(d).toBeUndefined();
              continue;
            }
            expect(d).toBeDefined();
            const want = nl ? s : s.endsWith('\n') ? s.slice(0, -1) : s;
            kept.push({ body: d!.body, want: Buffer.from(want, 'utf8').toString('utf8') });
          }
          for (const k of kept) expect(k.body.toString('utf8')).toBe(k.want);
        },
      ),
      { numRuns: 200 },
    );
  });
});

const resource: LogResource = {
  key: 'c1',
  attributes: {
    'container.id': 'c1',
    'container.name': 'web',
    'container.image.name': 'busybox',
    'container.image.tags': ['latest', '1.36'],
    'host.name': 'h',
  },
};
const other: LogResource = { key: 'c2', attributes: { 'container.id': 'c2', 'host.name': 'h' } };

function rec(body: string, o: Partial<LogRecord> = {}): LogRecord {
  return {
    resource,
    body: Buffer.from(body),
    stream: 'stdout',
    timeSec: 1714566896,
    timeNanos: 123456789,
    observedMs: 1714566897123,
    ...o,
  };
}

describe('OTLP protobuf encoder', () => {
  const batch = [
    rec('hello'),
    rec('héllo wörld ✓', { stream: 'stderr', resource: other }),
    rec('x'.repeat(70_000), { attributes: { 'harbormaster.log.truncated': true, tag: 'a' } }),
    rec('', { timeSec: 4102444800, timeNanos: 999_999_999 }),
    // processed records: severity, trace context, parsed attributes, dropped attribute count
    rec('payment failed', {
      severityNumber: 17,
      severityText: 'error',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      droppedAttributesCount: 3,
      attributes: {
        'http.status': 502,
        neg: -42,
        big: -9_007_199_254_740_991,
        ratio: 0.25,
        ok: false,
        'user.name': 'ünï',
      },
    }),
    rec('warn only', { severityNumber: 13, severityText: 'warn', stream: 'stderr' }),
    rec('trace without span or flags', { traceId: 'a'.repeat(32) }),
    rec('number level', { severityNumber: 9 }),
  ];

  it('matches the OpenTelemetry library serializer field for field', () => {
    const ours = decodeOtlp(
      'logs',
      encodeLogsRequest(batch),
      'application/x-protobuf',
    ) as ExportLogsServiceRequest;
    const lib = Buffer.from(
      ProtobufLogsSerializer.serializeRequest(toSdkLogRecords(batch) as never)!,
    );
    const ref = decodeOtlp('logs', lib, 'application/x-protobuf');
    expect(ours).toEqual(ref);
    // exact nanoseconds survive
    expect(ours.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.timeUnixNano).toBe(
      '1714566896123456789',
    );
    expect(ours.resourceLogs[0]!.scopeLogs[0]!.logRecords[2]!.timeUnixNano).toBe(
      '4102444800999999999',
    );
    // the processed fields are really there (not just equal defaults on both sides)
    const p = ours.resourceLogs[0]!.scopeLogs[0]!.logRecords[3]! as unknown as Record<
      string,
      unknown
    >;
    expect(p).toMatchObject({
      severityNumber: 17,
      severityText: 'error',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      flags: 1,
      droppedAttributesCount: 3,
    });
    expect(attrs(p.attributes as never)).toMatchObject({
      'http.status': 502,
      neg: -42,
      big: -9_007_199_254_740_991,
      ratio: 0.25,
      ok: false,
    });
  });

  it('matches the library for any processed fields (property)', () => {
    const hex = (n: number) =>
      fc
        .uint8Array({ minLength: n, maxLength: n })
        .map((a) => Buffer.from(a).toString('hex'))
        .filter((h) => !/^0+$/.test(h));
    const attrValue = fc.oneof(
      fc.string(),
      fc.boolean(),
      fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record(
            {
              body: fc.string(),
              severityNumber: fc.integer({ min: 1, max: 24 }),
              severityText: fc.string({ minLength: 1 }),
              traceId: hex(16),
              spanId: hex(8),
              traceFlags: fc.integer({ min: 0, max: 255 }),
              droppedAttributesCount: fc.integer({ min: 0, max: 100_000 }),
              attributes: fc.dictionary(
                // (integer-like keys would be reordered by the JS object the reference is built from)
                fc.string({ minLength: 1 }).map((k) => `k${k}`),
                attrValue,
                { maxKeys: 5 },
              ),
            },
            { requiredKeys: ['body'] },
          ),
          { minLength: 1, maxLength: 5 },
        ),
        (specs) => {
          const b = specs.map(({ body, ...o }) => rec(body, o as Partial<LogRecord>));
          const ours = decodeOtlp('logs', encodeLogsRequest(b), 'application/x-protobuf');
          const lib = Buffer.from(
            ProtobufLogsSerializer.serializeRequest(toSdkLogRecords(b) as never)!,
          );
          expect(ours).toEqual(decodeOtlp('logs', lib, 'application/x-protobuf'));
          const json = Buffer.from(
            JsonLogsSerializer.serializeRequest(toSdkLogRecords(b) as never)!,
          );
          expect(decodeOtlp('logs', json, 'application/json')).toEqual(ours);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes bodies that are ranges of shared buffers exactly as the same bodies as Buffers', () => {
    // The file tailer's records: bodies side by side in slabs (any offset, any length around the
    // eight-byte steps and the 256-byte switch to a view, multi-byte UTF-8), records of two slabs
    // interleaved in one batch, and the slabs' other bytes never leaking into a body.
    const tracker = new AckTracker<number>(() => {});
    const body = fc
      .array(fc.constantFrom('a', 'é', '✓', '😀', 'xyzw1234', '"', '\\'), { maxLength: 80 })
      .map((a) => Buffer.from(a.join('')));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(body, fc.boolean(), fc.nat(7)), { minLength: 1, maxLength: 12 }),
        (specs) => {
          const slabs = [Buffer.alloc(64 * 1024, 0xee), Buffer.alloc(64 * 1024, 0xdd)];
          const pos = [0, 0];
          const ranges: LogRecord[] = [];
          const whole: LogRecord[] = [];
          for (const [b, second, gap] of specs) {
            const k = second ? 1 : 0;
            const start = pos[k]! + gap;
            b.copy(slabs[k]!, start);
            pos[k] = start + b.length;
            const [seq, sec, stream] = [
              ranges.length,
              1714566896 + ranges.length,
              'stdout',
            ] as const;
            ranges.push(
              newRecordFromBytes(
                resource,
                stream,
                slabs[k]!,
                start,
                start + b.length,
                sec,
                7,
                1,
                tracker as AckTracker<unknown>,
                seq,
              ),
            );
            whole.push(
              rec('', { body: Buffer.from(b), timeSec: sec, timeNanos: 7, observedMs: 1 }),
            );
          }
          expect(encodeLogsRequest(ranges).equals(encodeLogsRequest(whole))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    // Lengths around every step: 0 to 300 bytes, at offsets 0 to 8.
    for (let off = 0; off <= 8; off++) {
      const slab = Buffer.alloc(1024, 0xee);
      const batch: LogRecord[] = [];
      const want: LogRecord[] = [];
      for (let len = 0; len <= 300; len++) {
        const b = Buffer.alloc(len);
        for (let i = 0; i < len; i++) b[i] = 0x21 + ((i * 7 + len) % 90);
        b.copy(slab, off);
        batch.push(
          newRecordFromBytes(
            resource,
            'stderr',
            Buffer.from(slab),
            off,
            off + len,
            1,
            2,
            3,
            tracker as AckTracker<unknown>,
            len,
          ),
        );
        want.push(rec('', { body: b, stream: 'stderr', timeSec: 1, timeNanos: 2, observedMs: 3 }));
      }
      const ours = decodeOtlp(
        'logs',
        encodeLogsRequest(batch),
        'application/x-protobuf',
      ) as ExportLogsServiceRequest;
      const bodies = ours.resourceLogs[0]!.scopeLogs[0]!.logRecords.map(
        (r) => (r.body as { stringValue: string }).stringValue,
      );
      expect(bodies).toEqual(want.map((r) => (r.body as Buffer).toString()));
      expect(encodeLogsRequest(batch).equals(encodeLogsRequest(want))).toBe(true);
    }
  });

  it('produces the same request as the library JSON serializer', () => {
    const ours = decodeOtlp('logs', encodeLogsRequest(batch), 'application/x-protobuf');
    const json = Buffer.from(JsonLogsSerializer.serializeRequest(toSdkLogRecords(batch) as never)!);
    expect(decodeOtlp('logs', json, 'application/json')).toEqual(ours);
  });
});
