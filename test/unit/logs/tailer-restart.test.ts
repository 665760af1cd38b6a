// Restarting from a checkpoint while partial lines of the two streams interleave: the checkpoint
// is only ever a place where no line is being reassembled, so a restart never turns the tail of a
// delivered partial line into a line of its own (found by the tailer property test in CI).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acknowledge } from '../../../src/logs/ack.js';
import type { Checkpoint } from '../../../src/logs/checkpoints.js';
import { Tailer } from '../../../src/logs/tailer.js';
import type { LogRecord } from '../../../src/logs/types.js';
import { FakeDockerLog } from './fake-docker.js';

const dirs: string[] = [];
const tailers: Tailer[] = [];
afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string, t: Tailer): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    t.wake();
    await new Promise((r) => setTimeout(r, 5));
  }
}

function start(file: string, checkpoint: Checkpoint | undefined, commits: Checkpoint[]) {
  const got: LogRecord[] = [];
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: { waitForSpace: () => undefined, push: (r) => got.push(r) },
    stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
    ...(checkpoint ? { checkpoint } : {}),
    commit: (cp) => commits.push(cp),
    startAt: 'beginning',
    maxLineBytes: 1 << 20,
    chunkBytes: 4096,
    partialFlushMs: 1e9,
    pollMs: 5,
    watch: false,
  });
  tailers.push(t);
  t.start();
  return { t, got, text: () => got.map((r) => `${r.stream}:${r.body.toString()}`) };
}

describe('tailer restart across interleaved partial lines', () => {
  it('re-reads whole lines only: no fragment of a delivered line comes back as a line', async () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'hm-restart-'));
    dirs.push(d);
    const w = new FakeDockerLog(d, 3);
    w.write('stdout', 'out-head|', false);
    w.write('stderr', 'err-head|', false); // stays open across the restart
    w.write('stdout', 'out-end');
    w.write('stdout', 'out-2');
    const commits: Checkpoint[] = [];
    const a = start(w.file, undefined, commits);
    await until(() => a.got.length === 2, 'the two stdout lines', a.t);
    expect(a.text()).toEqual(['stdout:out-head|out-end', 'stdout:out-2']);
    for (const r of a.got) acknowledge(r.ack);
    // Nothing is a restart point while the stderr line is open.
    expect(commits).toEqual([]);
    await a.t.stop();

    const b = start(w.file, commits.at(-1), commits);
    w.write('stderr', 'err-end');
    w.write('stdout', 'out-3');
    await until(() => b.got.length === 4, 'every line after the restart', b.t);
    // Duplicates of whole lines (they were past the last restart point), never a fragment.
    expect(b.text()).toEqual([
      'stdout:out-head|out-end',
      'stdout:out-2',
      'stderr:err-head|err-end',
      'stdout:out-3',
    ]);
    for (const r of b.got) acknowledge(r.ack);
    // Every line acknowledged: the checkpoint is the end of the file.
    expect(commits.at(-1)?.offset).toBeGreaterThan(0);
    await b.t.stop();
    const c = start(w.file, commits.at(-1), commits);
    w.write('stdout', 'out-4');
    await until(() => c.got.length === 1, 'the next line', c.t);
    expect(c.text()).toEqual(['stdout:out-4']);
  });
});
