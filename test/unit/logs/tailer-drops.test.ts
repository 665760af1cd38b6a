// The tailer's file-level drop reasons, each asserted with its count and what still arrives:
// file_truncated, rotated_away, file_removed_unread (malformed_record and oversized_raw_line are
// in malformed.test.ts; filter_drop, filter_keep, rate_limited in processing/processor.test.ts;
// export_rejected in pipeline.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Tailer, type TailerOptions } from '../../../src/logs/tailer.js';
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
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: { waitForSpace: () => undefined, push: (r) => got.push(r) },
    stats: { lines: () => {}, drop: (r) => drops.push(r), truncated: () => {}, warn: () => {} },
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
  return { t, got, drops, bodies: () => got.map((r) => r.body.toString()) };
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
