// The json-file decoder's body loop in WebAssembly (src/logs/wasm/json-body.wat) against the
// JavaScript loop it replaces: the same record decoded from a read buffer in the decoder's
// WebAssembly memory (the WebAssembly loop) and from a plain buffer (the JavaScript loop) must
// give the same answer, field for field, for any content a json-file log may hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeJsonFileLineInto,
  decodedBytes,
  decoderReadBuffer,
  encodeJsonFileLine,
  releaseDecoderReadBuffer,
  wasmDecodes,
  type DecodedBytes,
} from '../../../src/logs/jsonfile.js';
import { ByteLiterals, DEFAULT_REDACTION_PATTERNS } from '../../../src/logs/processing/redact.js';
import { JSON_BODY_WASM } from '../../../src/logs/wasm/json-body.js';
import { buildJsonBody } from '../../../scripts/build-wasm.js';

const pairs = new ByteLiterals(DEFAULT_REDACTION_PATTERNS.flatMap((p) => p.literals ?? [])).pairsLE;

/** What a decode decided: the result, the fields a caller reads and the body's bytes. */
function outcome(ok: boolean, d: DecodedBytes): unknown {
  if (!ok) return { ok };
  return {
    ok,
    body: Buffer.from(d.src.subarray(d.start, d.end)).toString('latin1'),
    complete: d.complete,
    stream: d.stream,
    timeSec: d.timeSec,
    timeNanos: d.timeNanos,
    attrs: d.attrs,
    framed: d.framed,
    recordEnd: d.recordEnd,
    // the literal look-up: only whether any pair was found matters to its caller, but both loops
    // OR the same table entries
    pairHits: d.pairHits,
  };
}

describe('json-file body loop in WebAssembly', () => {
  it('is the module built from json-body.wat (run `npm run wasm` after changing it)', async () => {
    expect((await buildJsonBody()).toString('base64')).toBe(JSON_BODY_WASM);
  });

  it('decides like the JavaScript loop on any record (escapes, control bytes, UTF-8, quotes, lengths, end known or not)', () => {
    expect(wasmDecodes()).toBeGreaterThanOrEqual(0);
    const before = wasmDecodes();
    const piece = fc.oneof(
      { weight: 6, arbitrary: fc.string({ maxLength: 80 }) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          'password=hunter2',
          'Bearer abc.def',
          'https://u:p@h/',
          'api_key: x',
          'tok',
          'en',
          '\\',
          '"',
          '\t\r\b\f',
          '\u0001\u001f',
          'é€𝄞',
          '/',
          'x'.repeat(33),
        ),
      },
    );
    const line = fc.record({
      body: fc.array(piece, { maxLength: 6 }).map((a) => a.join('')),
      newline: fc.boolean(),
      stderr: fc.boolean(),
      time: fc.constantFrom(
        '2024-05-01T12:34:56.123456789Z',
        '2024-05-01T12:34:56.12345678Z',
        '2024-05-01T12:34:56Z',
      ),
      // raw damage: a \uXXXX escape, a bad escape, a raw control byte or invalid UTF-8 in the string
      damage: fc.constantFrom('', '\\u00e9', '\\q', '\u0007', '\u001f', '\u007f', '\n', '\xff'),
      at: fc.nat(),
    });
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        (lines, withPairs, known) => {
          const text = lines
            .map((l) => {
              let rec = encodeJsonFileLine(
                l.newline ? `${l.body}\n` : l.body,
                l.stderr ? 'stderr' : 'stdout',
                l.time,
              );
              if (l.damage !== '') {
                // inside the log string: after `{"log":"`, before its closing quote
                const close = rec.indexOf('","stream"');
                const k = 8 + (l.at % Math.max(1, close - 8));
                rec = rec.slice(0, k) + l.damage + rec.slice(k);
              }
              return rec;
            })
            .join('');
          const bytes = Buffer.from(text, 'latin1');
          const plain = Buffer.from(bytes);
          const inWasm = decoderReadBuffer(bytes.length);
          expect(inWasm).toBeDefined();
          try {
            inWasm!.set(bytes);
            let s = 0;
            while (s < bytes.length) {
              const nl = bytes.indexOf(10, s);
              const end = known ? nl : -1;
              const a = decodedBytes();
              const b = decodedBytes();
              if (withPairs) {
                a.pairs = pairs;
                b.pairs = pairs;
              }
              const okJs = decodeJsonFileLineInto(plain, s, end, a, 40, 35);
              const okWasm = decodeJsonFileLineInto(inWasm!, s, end, b, 40, 35);
              expect(outcome(okWasm, b)).toEqual(outcome(okJs, a));
              s = nl + 1;
            }
          } finally {
            releaseDecoderReadBuffer(inWasm!);
          }
        },
      ),
      { numRuns: 1500 },
    );
    // the WebAssembly loop did run (a chunk in its memory, room for framing)
    expect(wasmDecodes() - before).toBeGreaterThan(1000);
  });

  it('lends its read buffers once each and takes back only its own', () => {
    const got: Buffer[] = [];
    for (let b = decoderReadBuffer(256 * 1024); b !== undefined; b = decoderReadBuffer(256 * 1024))
      got.push(b);
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((b) => b.byteOffset)).size).toBe(got.length);
    expect(decoderReadBuffer(1024 * 1024)).toBeUndefined();
    expect(releaseDecoderReadBuffer(Buffer.alloc(16))).toBe(false);
    for (const b of got) expect(releaseDecoderReadBuffer(b)).toBe(true);
    const again = decoderReadBuffer(100);
    expect(again).toBeDefined();
    releaseDecoderReadBuffer(again!);
  });
});
