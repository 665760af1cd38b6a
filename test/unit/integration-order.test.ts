// The integration project's order and locks (test/integration/harness): files of an APART group
// never run beside each other, and the order leaves the other worker something to run meanwhile.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireGroupLock, LOCK_DIR_ENV } from '../integration/harness/host-lock.js';
import { APART, spreadApart } from '../integration/harness/sequencer.js';

const spec = (name: string, seconds: number): { moduleId: string; seconds: number } => ({
  moduleId: `/repo/test/integration/${name}`,
  seconds,
});

describe('spreadApart', () => {
  /** Base names of spreadApart's order. */
  const names = (order: ReturnType<typeof spec>[], others?: number): string[] =>
    spreadApart(order, (s) => s.seconds, others).map((s) => path.basename(s.moduleId));
  it('keeps the first file of a group in place and each next one after files adding up to the one before it', () => {
    const [first, second, third] = APART['docker-churn']!.files as [string, string, string];
    const order = [
      spec(first, 150),
      spec(second, 120),
      spec('a.test.ts', 100),
      spec('b.test.ts', 80),
      spec(third, 45),
      spec('c.test.ts', 60),
      spec('d.test.ts', 50),
      spec('e.test.ts', 40),
      spec('metrics-parity.test.ts', 200), // RUN_ALONE: last
    ];
    const out = names(order);
    // second after a + b (180 >= 150), third after c + d (110 < 120) and e (150 >= 120)
    expect(out).toEqual([
      first,
      'a.test.ts',
      'b.test.ts',
      second,
      'c.test.ts',
      'd.test.ts',
      'e.test.ts',
      third,
      'metrics-parity.test.ts',
    ]);
  });

  it('puts members still waiting before the files that run alone, and leaves other orders alone', () => {
    const [first, second] = APART['docker-churn']!.files as [string, string];
    const order = [
      spec(first, 500),
      spec(second, 200),
      spec('a.test.ts', 10),
      spec('metrics-parity.test.ts', 200),
    ];
    expect(names(order)).toEqual([first, 'a.test.ts', second, 'metrics-parity.test.ts']);
    const plain = [spec('x.test.ts', 9), spec('y.test.ts', 5)];
    expect(spreadApart(plain, (s) => s.seconds)).toEqual(plain);
  });

  it('with two other workers, waits for files adding up to twice the previous member', () => {
    const [first, second] = APART['docker-churn']!.files as [string, string];
    const order = [
      spec(first, 90),
      spec(second, 75),
      spec('a.test.ts', 70),
      spec('b.test.ts', 70),
      spec('c.test.ts', 40),
      spec('d.test.ts', 30),
    ];
    // one other worker: after a (70 < 90) and b (140 >= 90); two: after a, b and c (180 >= 180)
    expect(names(order)).toEqual([
      first,
      'a.test.ts',
      'b.test.ts',
      second,
      'c.test.ts',
      'd.test.ts',
    ]);
    expect(names(order, 2)).toEqual([
      first,
      'a.test.ts',
      'b.test.ts',
      'c.test.ts',
      second,
      'd.test.ts',
    ]);
  });
});

describe('acquireGroupLock', () => {
  const saved = process.env[LOCK_DIR_ENV];
  let dir = '';
  afterEach(() => {
    if (saved === undefined) delete process.env[LOCK_DIR_ENV];
    else process.env[LOCK_DIR_ENV] = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lets one holder in at a time; the next gets it when the first releases it', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hm-lock-'));
    process.env[LOCK_DIR_ENV] = dir;
    const first = await acquireGroupLock('g');
    let second: Awaited<ReturnType<typeof acquireGroupLock>> | undefined;
    const waiting = acquireGroupLock('g').then((l) => (second = l));
    await new Promise((r) => setTimeout(r, 500));
    expect(second).toBeUndefined();
    const other = await acquireGroupLock('h'); // another group is not held up
    other.release();
    first.release();
    await waiting;
    expect(second?.waitedMs).toBeGreaterThanOrEqual(400);
    second?.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});
