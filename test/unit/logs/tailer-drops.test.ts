// The tailer's file-level drop reasons, each asserted with its count and what still arrives:
// file_truncated, rotated_away, file_removed_unread (malformed_record and oversized_raw_line are
// in malformed.test.ts; filter_drop, filter_keep, rate_limited in processing/processor.test.ts;
// export_rejected in pipeline.test.ts).
import { mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Tailer, type TailerOptions } from '../../../src/logs/tailer.js';
import type { GenerationHandle } from '../../../src/logs/gz-generation.js';
import type { DropReason, LogRecord } from '../../../src/logs/types.js';
import { FakeDockerLog } from './fake-docker.js';

const dirs: string[] = [];
const tailers: Tailer[] = [];
afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string, t?: Tailer): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    t?.wake();
    await new Promise((r) => setTimeout(r, 5));
  }
}

function setup(file: string, extra: Partial<TailerOptions> = {}) {
  const got: LogRecord[] = [];
  const drops: DropReason[] = [];
  const lost: number[] = [];
  let gate: { p: Promise<void>; open: () => void } | undefined;
  let pausedSeen = 0;
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: {
      waitForSpace: () => {
        if (gate) pausedSeen++;
        return gate?.p;
      },
      push: (r) => got.push(r),
    },
    stats: {
      lines: () => {},
      drop: (r) => drops.push(r),
      truncated: () => {},
      warn: () => {},
      lost: (_r, b) => lost.push(b),
    },
    startAt: 'beginning',
    maxLineBytes: 1 << 20,
    chunkBytes: 4096,
    partialFlushMs: 60_000,
    pollMs: 5,
    watch: false,
    ...extra,
  });
  tailers.push(t);
  t.start();
  return {
    t,
    got,
    drops,
    lost,
    bodies: () => got.map((r) => r.body.toString()),
    /** The tailer asked for room while the queue was full: it reads nothing until resume(). */
    paused: () => pausedSeen > 0,
    /** A full queue: the tailer waits (and stats its files) until resume(). */
    pause: () => {
      pausedSeen = 0;
      let open!: () => void;
      const p = new Promise<void>((r) => (open = r));
      gate = { p, open };
    },
    resume: () => {
      const g = gate;
      gate = undefined;
      g?.open();
    },
  };
}

function tempLog(): FakeDockerLog {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hm-drops-'));
  dirs.push(d);
  return new FakeDockerLog(d, 1);
}

describe('tailer drop reasons', () => {
  it('file_truncated: a file truncated in place is counted once and read again from its start', async () => {
    const w = tempLog();
    for (let i = 0; i < 5; i++) w.write('stdout', `before ${i}`);
    const h = setup(w.file);
    await until(() => h.got.length === 5, 'the first lines', h.t);
    w.truncate();
    w.write('stdout', 'after truncation');
    await until(() => h.got.length === 6, 'the line after the truncation', h.t);
    expect(h.bodies()[5]).toBe('after truncation');
    expect(h.drops).toEqual(['file_truncated']);
  });

  it('file_truncated while paused: the unread bytes it knew of are counted as lost bytes', async () => {
    const w = tempLog();
    for (let i = 0; i < 5; i++) w.write('stdout', `read ${i}`);
    const h = setup(w.file);
    await until(() => h.got.length === 5, 'the first lines', h.t);
    const readTo = statSync(w.file).size;
    h.pause();
    // Only once the tailer has seen the full queue: a read already under way would take the lines.
    await until(h.paused, 'the tailer paused', h.t);
    for (let i = 0; i < 3; i++) w.write('stdout', `never read ${i}`);
    const unread = statSync(w.file).size - readTo;
    await until(() => h.t.bytesBehind() === unread, 'bytes behind while paused', h.t);
    w.truncate();
    w.write('stdout', 'after');
    h.resume();
    await until(() => h.got.length === 6, 'the line after the truncation', h.t);
    expect(h.bodies()[5]).toBe('after');
    expect(h.drops).toEqual(['file_truncated']);
    expect(h.lost).toEqual([unread]);
  });

  it.each([
    { handle: 'without a descriptor (the head read through the thread pool)', fd: false },
    { handle: 'with a descriptor (the head read directly, headStillSame)', fd: true },
  ])(
    'file_truncated between a read and its head check, then paused: counted once, bytes behind 0 ($handle)',
    async ({ fd: withFd }) => {
      // A live tail reads a chunk, then checks the file's first bytes: a truncation between the two
      // discards the chunk. If the queue is full right after, the paused tailer looks at the file
      // again; it must not take the size from before the truncation for a second one.
      const w = tempLog();
      for (let i = 0; i < 5; i++) w.write('stdout', `before ${i}`);
      // the tailer's handle of the live file: the real file, truncated (for real) right after the
      // first chunk read past the first five lines returned (the head check reads at position 0)
      const real = await open(w.file, 'r');
      const st = await real.stat();
      let armed = false;
      let chunk = 0;
      let h!: ReturnType<typeof setup>;
      const fh: GenerationHandle = {
        ...(withFd ? { fd: real.fd } : {}),
        read: async (buf, offset, length, position) => {
          const r = await real.read(buf, offset, length, position);
          if (armed && position > 0 && r.bytesRead > 0) {
            armed = false;
            chunk = r.bytesRead;
            truncateSync(w.file, 0);
            h.pause();
          }
          return r;
        },
        stat: () => real.stat(),
        close: () => real.close(),
      };
      try {
        h = setup(w.file, { grabbed: { fh, dev: st.dev, ino: st.ino } });
        await until(() => h.got.length === 5, 'the first lines', h.t);
        armed = true;
        for (let i = 0; i < 3; i++) w.write('stdout', `read, then truncated away ${i}`);
        await until(h.paused, 'the tailer paused after the truncation', h.t);
        await until(() => !armed, 'the truncating read', h.t);
        // several looks at the paused file: each would count the truncation again
        const polls = Date.now() + 100;
        await until(() => Date.now() > polls, '100 ms of polls while paused', h.t);
        expect(h.drops).toEqual(['file_truncated']);
        expect(h.lost).toEqual([chunk]);
        expect(h.t.bytesBehind()).toBe(0);
        w.write('stdout', 'after');
        h.resume();
        await until(() => h.got.length === 6, 'the line after the truncation', h.t);
        expect(h.bodies()[5]).toBe('after');
        expect(h.drops).toEqual(['file_truncated']);
      } finally {
        await real.close().catch(() => undefined);
      }
    },
  );

  it('file_truncated while stopped: the checkpointed inode, alone and rewritten, is a truncation, not rotated_away', async () => {
    const w = tempLog();
    w.write('stdout', 'new content');
    const st = statSync(w.file);
    const h = setup(w.file, {
      checkpoint: { path: w.file, dev: st.dev, ino: st.ino, fp: 'ab', fpLen: 2, offset: 5000 },
    });
    await until(() => h.got.length === 1, 'the line written after the truncation', h.t);
    expect(h.bodies()).toEqual(['new content']);
    expect(h.drops).toEqual(['file_truncated']);
  });

  it('rotated_away: a checkpoint whose file is gone is counted once; the files present are read from their start', async () => {
    const w = tempLog();
    w.write('stdout', 'one');
    w.write('stderr', 'two');
    const h = setup(w.file, {
      checkpoint: { path: w.file, dev: 1, ino: 999_999_999, fp: 'ab', fpLen: 2, offset: 100 },
    });
    await until(() => h.got.length === 2, 'both lines', h.t);
    expect(h.bodies()).toEqual(['one', 'two']);
    expect(h.drops).toEqual(['rotated_away']);
  });

  it('file_removed_unread: a container removed before its log file could be opened is counted once and finishes', async () => {
    const w = tempLog();
    const h = setup(path.join(w.dir, 'never-created-json.log'));
    h.t.markRemoved();
    await h.t.finished;
    expect(h.drops).toEqual(['file_removed_unread']);
    expect(h.got).toHaveLength(0);
  });
});
