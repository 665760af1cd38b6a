// The fixed64 nanosecond halves every encoded log record carries (time and observed time): the
// per-second shortcut gives the same halves as BigInt arithmetic for any second and nanosecond,
// in any order of calls (the shortcut keeps the last second).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hiLo, nanosHiLoInto } from '../../../src/logs/otlp-wire.js';

describe('nanosHiLoInto', () => {
  it('splits sec * 1e9 + nanos into the exact 32-bit halves (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            // up to year 2554 (2^64 ns), seconds often repeated as in a log
            sec: fc.oneof(
              fc.integer({ min: 0, max: 18_446_744_072 }),
              fc.constantFrom(0, 1_700_000_000, 1_700_000_001),
            ),
            nanos: fc.integer({ min: 0, max: 999_999_999 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        (calls) => {
          for (const { sec, nanos } of calls) {
            nanosHiLoInto(sec, nanos);
            const want = BigInt(sec) * 1_000_000_000n + BigInt(nanos);
            expect(BigInt(hiLo.hi) * 4294967296n + BigInt(hiLo.lo)).toBe(want);
            expect(hiLo.lo).toBeLessThan(4294967296);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
