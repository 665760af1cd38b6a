// Acceptance 6: a tailer against a simple model through random sequences of append, partial
// append, rotation by rename, delete-and-recreate, truncation and restart (real files in a temp
// dir). Delivered is never less than the model; duplicates only after a restart. The same with a
// sink that takes runs of encoded lines (src/logs/run.ts), as the agent's does for OTLP protobuf.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acknowledge } from '../../../src/logs/ack.js';
import type { Checkpoint } from '../../../src/logs/checkpoints.js';
import { Tailer, type TailerStats } from '../../../src/logs/tailer.js';
import { batchRecords, type BatchItem } from '../../../src/logs/run.js';
import type { LogRecord } from '../../../src/logs/types.js';
import { FakeDockerLog } from './fake-docker.js';

type Op =
  | { k: 'append'; stream: 'stdout' | 'stderr'; n: number; pad: number }
  | { k: 'partial'; stream: 'stdout' | 'stderr'; frags: number; pad: number }
  | { k: 'rotate' }
  | { k: 'recreate' }
  | { k: 'truncate' }
  | { k: 'ack' }
  | { k: 'restart' };

const streamArb = fc.constantFrom('stdout' as const, 'stderr' as const);
// Docker never mixes the two rotation styles for one container (max-file is fixed at creation):
// max-file >= 2 renames, max-file = 1 deletes and recreates.
const opArb = (rotation: 'rotate' | 'recreate'): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        k: fc.constant('append' as const),
        stream: streamArb,
        n: fc.integer({ min: 1, max: 20 }),
        pad: fc.integer({ min: 0, max: 300 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant('partial' as const),
        stream: streamArb,
        frags: fc.integer({ min: 1, max: 3 }),
        pad: fc.integer({ min: 1, max: 200 }),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ k: rotation }) },
    { weight: 1, arbitrary: fc.constant({ k: 'truncate' as const }) },
    { weight: 2, arbitrary: fc.constant({ k: 'ack' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
  );

const quietStats: TailerStats = {
  lines: () => {},
  drop: () => {},
  truncated: () => {},
  warn: () => {},
};

async function until(
  cond: () => boolean,
  t: Tailer | undefined,
  what: string,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    t?.wake();
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lines the runs variant received in runs (the sink's runs are used, not only offered). */
let runLines = 0;

async function runScenario(ops: Op[], maxFiles: number, runs = false): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-tailer-'));
  const w = new FakeDockerLog(dir, maxFiles);
  const resource = { key: 'c', attributes: {} };
  const expected: Record<'stdout' | 'stderr', string[]> = { stdout: [], stderr: [] };
  const open: Partial<Record<'stdout' | 'stderr', string>> = {};
  let seq = 0;
  const delivered: LogRecord[] = []; // acknowledged (what a receiver has)
  let pending: BatchItem[] = []; // handed to the queue, not acknowledged yet
  let checkpoint: Checkpoint | undefined;
  let restarts = 0;
  let deletedSinceAck = false;
  const make = (): Tailer =>
    new Tailer({
      key: 'c',
      path: w.file,
      resource,
      sink: {
        waitForSpace: () => undefined,
        push: (r) => pending.push(r),
        // Small limits: runs end at them as well as at chunk and slab ends.
        ...(runs
          ? {
              runs: {
                passes: () => true,
                push: (x) => {
                  runLines += x.lines;
                  pending.push(x);
                },
                maxLines: 7,
                maxBytes: 1500,
              },
            }
          : {}),
      },
      stats: quietStats,
      ...(checkpoint ? { checkpoint } : {}),
      // The tailer's ack tracker commits the longest acknowledged run: the checkpoint to restart from.
      commit: (cp) => (checkpoint = cp),
      startAt: 'beginning',
      maxLineBytes: 1 << 20,
      chunkBytes: 4096,
      partialFlushMs: 1e9,
      pollMs: 5,
      watch: false,
    });
  const ack = (): void => {
    for (const r of pending) acknowledge(r.ack);
    delivered.push(...batchRecords(pending));
    pending = [];
    if (
      open.stdout === undefined &&
      open.stderr === undefined &&
      seen() >= countComplete() &&
      delivered.length >= seen()
    )
      deletedSinceAck = false;
  };
  const countComplete = (): number => expected.stdout.length + expected.stderr.length;
  const seen = (): number =>
    new Set([...delivered, ...batchRecords(pending)].map((r) => `${r.stream}|${r.body.toString()}`))
      .size;
  let t = make();
  t.start();
  try {
    const writeLine = (stream: 'stdout' | 'stderr', pad: number): void => {
      const body = `${stream}-${++seq}-${'x'.repeat(pad)}`;
      const prefix = open[stream];
      if (prefix !== undefined) {
        // finish the open partial line first
        w.write(stream, 'end', true);
        expected[stream].push(`${prefix}end`);
        open[stream] = undefined;
      }
      w.write(stream, body, true);
      expected[stream].push(body);
    };
    for (const op of ops) {
      switch (op.k) {
        case 'append':
          for (let i = 0; i < op.n; i++) writeLine(op.stream, op.pad);
          break;
        case 'partial': {
          let prefix = open[op.stream] ?? '';
          for (let i = 0; i < op.frags; i++) {
            const frag = `${op.stream}-p${++seq}-${'y'.repeat(op.pad)}|`;
            w.write(op.stream, frag, false);
            prefix += frag;
          }
          open[op.stream] = prefix;
          break;
        }
        case 'rotate':
        case 'recreate': {
          // Like inotify: the tailer gets to see the live file before Docker rotates again.
          const ino = w.liveInode();
          await until(() => t.openInodes().includes(ino), t, 'live file opened');
          if (op.k === 'rotate') {
            if (w.rotateRename()) deletedSinceAck = true;
          } else {
            w.deleteRecreate();
            deletedSinceAck = true;
          }
          const ino2 = w.liveInode();
          await until(() => t.openInodes().includes(ino2), t, 'new live file opened');
          break;
        }
        case 'truncate': {
          // Docker never truncates in the middle of a line.
          if (open.stdout !== undefined || open.stderr !== undefined) break;
          // Truncation loses what was not read: the model truncates only after the tailer caught up.
          const done = countComplete();
          await until(() => seen() >= done && t.openInodes().length === 1, t, 'caught up');
          await new Promise((r) => setTimeout(r, 10));
          w.truncate();
          deletedSinceAck = true;
          // The tailer ships a line being reassembled as it is when its file is truncated.
          for (const s of ['stdout', 'stderr'] as const) {
            const prefix = open[s];
            if (prefix !== undefined) expected[s].push(prefix);
            open[s] = undefined;
          }
          break;
        }
        case 'ack':
          await new Promise((r) => setTimeout(r, 3));
          ack();
          break;
        case 'restart':
          // The start of a line being reassembled sat in a file Docker deleted: it is gone with
          // the process (inherent); the model does not restart then.
          if (deletedSinceAck && (open.stdout !== undefined || open.stderr !== undefined)) break;
          if (deletedSinceAck) {
            // Lines in a file Docker already deleted survive only in memory: a restart before they
            // are acknowledged loses them in any design. The model acknowledges first.
            const done = countComplete();
            await until(() => seen() >= done, t, 'caught up before restart');
            await new Promise((r) => setTimeout(r, 10));
            ack();
          }
          await t.stop();
          pending = []; // unacknowledged records were only in memory
          restarts++;
          t = make();
          t.start();
          break;
      }
    }
    for (const s of ['stdout', 'stderr'] as const) if (open[s] !== undefined) writeLine(s, 0);
    const total = countComplete();
    await until(() => seen() >= total, t, `all ${total} lines delivered`);
    await new Promise((r) => setTimeout(r, 20));
    ack();
  } finally {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const s of ['stdout', 'stderr'] as const) {
    const got = delivered.filter((r) => r.stream === s).map((r) => r.body.toString());
    const firstSeen: string[] = [];
    const counts = new Map<string, number>();
    for (const g of got) {
      counts.set(g, (counts.get(g) ?? 0) + 1);
      if (counts.get(g) === 1) firstSeen.push(g);
    }
    // never less than the model, in order
    expect(firstSeen).toEqual(expected[s]);
    // duplicates only after restarts (each restart re-sends at most the unacknowledged tail once)
    for (const [, c] of counts) expect(c).toBeLessThanOrEqual(1 + restarts);
    if (restarts === 0) expect(got.length).toBe(expected[s].length);
  }
}

describe('tailer vs model (property)', () => {
  it('delivers every line, in order per stream; duplicates only after a restart (max-file 3, rename)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb('rotate'), { minLength: 1, maxLength: 25 }), (ops) =>
        runScenario(ops, 3),
      ),
      {
        numRuns: 40,
        examples: [
          // Found by CI: a restart while a stderr line was being reassembled, with a stdout
          // partial line delivered across it; the rest of the stdout line came back as "end".
          [
            [
              { k: 'partial', stream: 'stdout', frags: 1, pad: 1 },
              { k: 'partial', stream: 'stderr', frags: 1, pad: 1 },
              { k: 'append', stream: 'stdout', n: 1, pad: 0 },
              { k: 'ack' },
              { k: 'restart' },
              { k: 'partial', stream: 'stdout', frags: 1, pad: 1 },
            ],
          ],
          // Found by a run of session 12 (seed -2114888322): the live file truncated in place,
          // then rotated, then a restart with everything acknowledged. The checkpoint (in the
          // truncated file, on its old content) matched no file, so every file was read again
          // from its start, older ones too: the tail of a delivered partial line came back as
          // "end".
          [
            [
              { k: 'partial', stream: 'stderr', frags: 1, pad: 1 },
              { k: 'rotate' },
              { k: 'append', stream: 'stderr', n: 1, pad: 0 },
              { k: 'rotate' },
              { k: 'append', stream: 'stdout', n: 1, pad: 0 },
              { k: 'truncate' },
              { k: 'rotate' },
              { k: 'restart' },
            ],
          ],
        ],
      },
    );
  }, 120_000);

  it('same with max-file 2 (rename)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb('rotate'), { minLength: 1, maxLength: 25 }), (ops) =>
        runScenario(ops, 2),
      ),
      { numRuns: 20 },
    );
  }, 120_000);

  it('same with max-file 1 (delete and recreate)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb('recreate'), { minLength: 1, maxLength: 25 }), (ops) =>
        runScenario(ops, 1),
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it.each([
    { maxFiles: 3, rotation: 'rotate' as const, how: 'rename' },
    { maxFiles: 1, rotation: 'recreate' as const, how: 'delete and recreate' },
  ])(
    'same with runs of encoded lines (max-file $maxFiles, $how)',
    async ({ maxFiles, rotation }) => {
      runLines = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb(rotation), { minLength: 1, maxLength: 25 }), (ops) =>
          runScenario(ops, maxFiles, true),
        ),
        { numRuns: 40 },
      );
      expect(runLines).toBeGreaterThan(100);
    },
    120_000,
  );
});
