// Issue 11 acceptance 2: the ack tracker against a model. A source reads units (raw lines) of
// two streams; units are dropped (acknowledged at once), or join the open group of their stream
// (a partial line or multiline group holding the acks of its lines), or close it into a record;
// records are delivered in any order; the process restarts from the committed position.
// Invariants: the committed position is exactly the longest acknowledged prefix (it never passes
// an unacknowledged unit and never lags behind a complete prefix); after a restart only units at
// or after the first unacknowledged one are read again; in the end everything is delivered.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckTracker, acknowledge, joinAcks, type Ack } from '../../../src/logs/ack.js';

type Op =
  | { k: 'read'; units: { stream: 0 | 1; what: 'drop' | 'join' | 'close' }[] }
  | { k: 'deliver'; pick: number }
  | { k: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('read' as const),
      units: fc.array(
        fc.record({
          stream: fc.constantFrom(0 as const, 1 as const),
          what: fc.constantFrom(
            'drop' as const,
            'join' as const,
            'close' as const,
            'close' as const,
          ),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    }),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
);

function run(ops: Op[]): void {
  /** Units acknowledged at least once (by absolute index). */
  const acked = new Set<number>();
  /** Units acknowledged since the last (re)start, and where that incarnation started. */
  let ackedNow = new Set<number>();
  let startedAt = 0;
  /** How often each unit was read (duplicates come only from restarts). */
  const reads = new Map<number, number>();
  /** Units a restart may read again: at or after the committed position when it happened. */
  const resentOk = new Set<number>();
  let committed = 0; // persisted position: units before it are delivered
  let next = 0; // next unit the source reads
  let tracker!: AckTracker<null>;
  let open: [Ack | undefined, Ack | undefined] = [undefined, undefined];
  let outstanding: { ack: Ack; units: number[] }[] = [];
  let openUnits: [number[], number[]] = [[], []];
  const start = (): void => {
    next = committed;
    startedAt = committed;
    ackedNow = new Set();
    open = [undefined, undefined];
    openUnits = [[], []];
    outstanding = [];
    // Positions: the tracker reports n = index of the unit + 1 (the offset after it).
    tracker = new AckTracker<null>((_, n) => {
      expect(n).toBeGreaterThan(committed);
      committed = n;
    });
  };
  const prefix = (): number => {
    let p = 0;
    while (acked.has(p)) p++;
    return p;
  };
  const prefixNow = (): number => {
    let p = startedAt;
    while (ackedNow.has(p)) p++;
    return p;
  };
  const ack = (u: number): void => {
    acked.add(u);
    ackedNow.add(u);
  };
  const check = (): void => {
    // Exactly the longest run acknowledged since the (re)start point: never past an
    // unacknowledged unit, never behind a complete run.
    expect(committed).toBe(prefixNow());
    expect(committed).toBeLessThanOrEqual(prefix());
    for (let u = 0; u < committed; u++) expect(acked.has(u)).toBe(true);
  };
  start();
  const readUnit = (stream: 0 | 1, what: 'drop' | 'join' | 'close'): void => {
    const u = next++;
    reads.set(u, (reads.get(u) ?? 0) + 1);
    if (what === 'drop') {
      tracker.skip(null, u + 1);
      ack(u);
      return;
    }
    const token = tracker.next(null, u + 1);
    open[stream] = joinAcks(open[stream], token);
    openUnits[stream].push(u);
    if (what === 'close') {
      outstanding.push({ ack: open[stream]!, units: openUnits[stream] });
      open[stream] = undefined;
      openUnits[stream] = [];
    }
  };
  for (const op of ops) {
    if (op.k === 'read') for (const u of op.units) readUnit(u.stream, u.what);
    else if (op.k === 'deliver') {
      if (outstanding.length === 0) continue;
      const [r] = outstanding.splice(op.pick % outstanding.length, 1);
      acknowledge(r!.ack);
      for (const u of r!.units) ack(u);
    } else {
      const before = committed;
      for (let u = before; u < next; u++) resentOk.add(u);
      start();
      expect(next).toBe(before);
    }
    check();
  }
  // Finish: close the groups, deliver everything.
  for (const s of [0, 1] as const)
    if (open[s]) {
      outstanding.push({ ack: open[s], units: openUnits[s] });
      open[s] = undefined;
    }
  for (const r of outstanding) {
    acknowledge(r.ack);
    for (const u of r.units) ack(u);
  }
  outstanding = [];
  check();
  expect(committed).toBe(next);
  expect(tracker.outstanding).toBe(0);
  // Nothing lost; a unit is read again only by a restart that found it at or after the first
  // unacknowledged unit (the in-flight window), never once it was committed.
  for (let u = 0; u < next; u++) expect(acked.has(u)).toBe(true);
  for (const [u, n] of reads) if (n > 1) expect(resentOk.has(u)).toBe(true);
}

describe('ack tracker vs model (property)', () => {
  it('commits exactly the longest acknowledged run through emit, ack, drop, group and restart', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => run(ops)),
      { numRuns: 500 },
    );
  });

  it('a held group keeps the commit before its first line while later lines are delivered', () => {
    let committed = 0;
    const t = new AckTracker<string>((_, n) => (committed = n));
    const first = t.next('f', 1); // stderr line 1 opens a multiline group (held)
    const a = t.next('f', 2); // stdout line 2 shipped
    const second = t.next('f', 3); // stderr line 3 joins the group
    acknowledge(a);
    expect(committed).toBe(0);
    acknowledge(joinAcks(first, second));
    expect(committed).toBe(3);
    expect(t.committed).toEqual({ ref: 'f', n: 3 });
  });

  it('commits only at commit points: an acknowledged run ending inside a reassembled line stops at the last point', () => {
    const commits: number[] = [];
    const t = new AckTracker<string>((_, n) => commits.push(n));
    const a = t.next('f', 10); // a whole line
    const b = t.next('f', 20, false); // a partial line opens here
    const c = t.next('f', 30, false); // a line of the other stream while it is open
    acknowledge(a);
    acknowledge(c);
    acknowledge(b);
    expect(commits).toEqual([10]);
    const d = t.next('f', 40); // the partial line ends: a point again
    acknowledge(d);
    expect(commits).toEqual([10, 40]);
    expect(t.committed).toEqual({ ref: 'f', n: 40 });
    expect(t.outstanding).toBe(0);
  });
});
