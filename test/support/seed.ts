// Seeded randomness for tests: the seed comes from HARBORMASTER_TEST_SEED when set, else is
// drawn once; it is printed when the calling test fails, so a failure can be replayed.
import { onTestFailed } from 'vitest';

/** mulberry32: a small, well-distributed 32-bit PRNG; returns floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Call inside a test: a seeded random source whose seed is reported if the test fails. */
export function seededRandom(what: string): { seed: number; random: () => number } {
  const env = process.env.HARBORMASTER_TEST_SEED;
  const seed =
    env !== undefined && env !== '' ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  onTestFailed(() => {
    console.log(`${what}: random seed ${seed}; replay with HARBORMASTER_TEST_SEED=${seed}`);
  });
  return { seed, random: mulberry32(seed) };
}
