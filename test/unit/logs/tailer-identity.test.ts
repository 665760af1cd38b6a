// Generation identity across inode reuse (the "whole generation lost, no drop counted" defect of
// the 64 KiB delivery test). On ext4 a deleted inode is handed to the next file created, and
// Docker's json-file generations that begin with the middle of a long line (a 16 KiB partial
// fragment) have identical first kilobytes. The tailer took such a new generation for one it had
// already read (same device, inode and first-1024-byte fingerprint) and skipped it, or, after a
// restart, applied the checkpoint's offset to it. These tests build that situation on the real
// filesystem the way Docker's rotation does it (moby loggerutils: max-file=1 unlinks the live file
// and creates a new one; max-file >= 2 renames) and require every line to arrive.
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acknowledge } from '../../../src/logs/ack.js';
import type { Checkpoint } from '../../../src/logs/checkpoints.js';
import { encodeJsonFileLine } from '../../../src/logs/jsonfile.js';
import { Tailer, type TailerOptions } from '../../../src/logs/tailer.js';
import type { DropReason, LogRecord } from '../../../src/logs/types.js';

const dirs: string[] = [];
const tailers: Tailer[] = [];
const mounts: string[] = [];
afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
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

/** inotify watches of this process on the inode `ino` (from /proc/self/fdinfo). */
function inotifyWatchesOf(ino: number): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let text: string;
    try {
      text = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile
    }
    for (const m of text.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+) /gm))
      if (parseInt(m[1] as string, 16) === ino) n++;
  }
  return n;
}

let clock = 1_700_000_000_000_000_000n;
function ts(): string {
  clock += 1_001n;
  const sec = clock / 1_000_000_000n;
  const ns = clock % 1_000_000_000n;
  return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${ns.toString().padStart(9, '0')}Z`;
}

/**
 * One generation's content: it begins inside a long line (a 16 KiB fragment of `x`, then the end
 * of that line), then numbered lines `tag-1` … `tag-n`.
 */
function generation(tag: string, n: number): { bytes: string; lines: string[] } {
  let bytes = encodeJsonFileLine('x'.repeat(16 * 1024), 'stdout', ts());
  bytes += encodeJsonFileLine(`end-${tag}\n`, 'stdout', ts());
  const lines = [`${'x'.repeat(16 * 1024)}end-${tag}`];
  for (let i = 1; i <= n; i++) {
    bytes += encodeJsonFileLine(`${tag}-${i}\n`, 'stdout', ts());
    lines.push(`${tag}-${i}`);
  }
  return { bytes, lines };
}

function setup(file: string, extra: Partial<TailerOptions> = {}) {
  const got: LogRecord[] = [];
  const drops: DropReason[] = [];
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: { waitForSpace: () => undefined, push: (r) => got.push(r) },
    stats: {
      lines: () => {},
      drop: (r) => drops.push(r),
      truncated: () => {},
      warn: () => {},
      lost: () => {},
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
  return { t, got, drops, bodies: () => got.map((r) => r.body.toString()) };
}

function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hm-ident-'));
  dirs.push(d);
  return d;
}

/**
 * A directory for the inode-reuse cases: a fresh 16 MiB ext4 file system of this test alone
 * (loop-mounted; needs root, as CI runs), where a freed inode goes to the next file created,
 * because no other process creates files there. Elsewhere (not root, no loop device) a plain
 * temporary directory, where createOnInode searches for the inode.
 */
function inodeDir(): string {
  const d = tmp();
  if (process.getuid?.() !== 0) return d;
  const mnt = path.join(d, 'fs');
  try {
    execFileSync('truncate', ['-s', '16M', path.join(d, 'fs.img')]);
    execFileSync('mkfs.ext4', ['-q', '-F', path.join(d, 'fs.img')]);
    mkdirSync(mnt);
    execFileSync('mount', ['-o', 'loop', path.join(d, 'fs.img'), mnt]);
  } catch {
    return d;
  }
  mounts.push(mnt);
  return mnt;
}

/**
 * Writes `content` as a new file at `file` on inode `ino` when it is free: ext4 hands a freed inode
 * to the next file created in the directory, but other processes creating files meanwhile may take
 * it first, so spare files are created until one gets it (then renamed into place). Up to 20 s:
 * the tailer closes a finished generation asynchronously, and on a loaded machine (the other unit
 * worker creating temporary files too) the inode came free only after more than the 2,000 tries
 * this allowed before.
 */
async function createOnInode(file: string, content: string, ino: number): Promise<void> {
  const spares: string[] = [];
  const deadline = Date.now() + 20_000;
  try {
    for (let i = 0; Date.now() < deadline; i++) {
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 10));
      const spare = `${path.dirname(file)}/spare-${i}`;
      writeFileSync(spare, '');
      if (statSync(spare).ino === ino) {
        writeFileSync(spare, content);
        renameSync(spare, file);
        return;
      }
      spares.push(spare);
      // hold at most 2,000 spares: freeing them lets the search start over
      if (spares.length >= 2000) for (const sp of spares.splice(0)) unlinkSync(sp);
    }
    writeFileSync(file, content);
  } finally {
    for (const sp of spares) unlinkSync(sp);
  }
}

/** Docker's rotation (moby loggerutils rotate()), then the new live file with its content. */
async function rotate(file: string, maxFile: number, content: string, ino?: number): Promise<void> {
  if (maxFile < 2) unlinkSync(file);
  else {
    if (existsSync(`${file}.${maxFile - 1}`)) unlinkSync(`${file}.${maxFile - 1}`);
    for (let i = maxFile - 1; i > 1; i--)
      if (existsSync(`${file}.${i - 1}`)) renameSync(`${file}.${i - 1}`, `${file}.${i}`);
    renameSync(file, `${file}.1`);
  }
  if (ino === undefined) writeFileSync(file, content);
  else await createOnInode(file, content, ino);
}

describe('generation identity when Docker reuses an inode', () => {
  it.each([1, 2])(
    'max-file=%i: a new generation on the inode of one already read, same first KiB, is read',
    async (maxFile) => {
      const file = path.join(inodeDir(), 'c-json.log');
      const a = generation('a', 50);
      writeFileSync(file, a.bytes);
      const inoA = statSync(file).ino;
      const s = setup(file);
      await until(() => s.got.length === a.lines.length, 'generation a read', s.t);

      // Docker rotates: unlink (max-file=1) or rename the live file, create a new one.
      const b = generation('b', 50);
      await rotate(file, maxFile, b.bytes);
      const inoB = statSync(file).ino;
      await until(
        () =>
          s.got.length === a.lines.length + b.lines.length && s.t.openInodes().join() === `${inoB}`,
        'generation b read and a closed',
        s.t,
      );

      // Rotates again, deleting a (max-file=2: as the oldest); a is closed, so the new live file
      // gets its inode (ext4 hands it out again).
      const c = generation('c', 50);
      await rotate(file, maxFile, c.bytes, inoA);
      expect(statSync(file).ino, 'precondition: the filesystem reuses the freed inode').toBe(inoA);
      await until(
        () => s.got.length >= a.lines.length + b.lines.length + c.lines.length,
        'generation c read',
        s.t,
      ).catch((err: unknown) => {
        throw new Error(
          `${String(err)}; got ${s.got.length} of ${a.lines.length + b.lines.length + c.lines.length}, drops ${s.drops.join(',') || 'none'}`,
        );
      });
      expect(s.bodies()).toEqual([...a.lines, ...b.lines, ...c.lines]);
      expect(s.drops).toEqual([]);
    },
  );

  it('a checkpoint in a deleted generation is not applied to a new one on the same inode', async () => {
    const file = path.join(inodeDir(), 'c-json.log');
    const a = generation('a', 50);
    writeFileSync(file, a.bytes);
    const inoA = statSync(file).ino;
    let cp: Checkpoint | undefined;
    const s = setup(file, { commit: (c) => (cp = c) });
    await until(() => s.got.length === a.lines.length, 'generation a read', s.t);
    // Acknowledge up to the 10th numbered line: the checkpoint points into the middle of a.
    for (const r of s.got.slice(0, 12)) acknowledge(r.ack);
    expect(cp?.ino).toBe(inoA);
    const offset = cp!.offset;
    await s.t.stop();

    // While the agent is down Docker rotates (max-file=1) and the new file gets a's inode.
    const c = generation('c', 50);
    unlinkSync(file);
    await createOnInode(file, c.bytes, inoA);
    expect(statSync(file).ino, 'precondition: the filesystem reuses the freed inode').toBe(inoA);
    expect(statSync(file).size).toBeGreaterThan(offset);

    const s2 = setup(file, { checkpoint: cp! });
    await until(() => s2.got.length >= c.lines.length, 'generation c read', s2.t).catch(
      (err: unknown) => {
        throw new Error(
          `${String(err)}; got ${s2.got.length} of ${c.lines.length}, drops ${s2.drops.join(',') || 'none'}`,
        );
      },
    );
    expect(s2.bodies()).toEqual(c.lines);
    // What a held after the checkpoint is gone with it: counted once, not silent. (A new file on
    // the same inode as the only generation looks like a truncation in place where the file
    // system keeps no birth times; where it does, it is told apart: rotated_away.)
    expect(s2.drops).toHaveLength(1);
    expect(['rotated_away', 'file_truncated']).toContain(s2.drops[0]);
  });
});

describe('a checkpoint and the birth time of its file', () => {
  it('a checkpointed file truncated in place and rotated: read from its start, older files skipped, counted once', async () => {
    const file = path.join(inodeDir(), 'c-json.log');
    const a = generation('a', 30);
    writeFileSync(file, a.bytes);
    const b = generation('b', 30);
    await new Promise((r) => setTimeout(r, 20)); // born in a later tick of the file clock
    await rotate(file, 3, b.bytes); // a is .1, b the live file
    const inoB = statSync(file).ino;
    expect(statSync(file).birthtimeMs).toBeGreaterThan(statSync(`${file}.1`).birthtimeMs);
    let cp: Checkpoint | undefined;
    const s = setup(file, { commit: (c) => (cp = c) });
    await until(() => s.got.length === a.lines.length + b.lines.length, 'a and b read', s.t);
    for (const r of s.got) acknowledge(r.ack);
    expect(cp?.ino).toBe(inoB);
    expect(cp?.btime, 'this file system keeps birth times').toBeGreaterThan(0);
    await s.t.stop();
    // While the agent is down: b truncated in place (`: > file`), then written and rotated.
    writeFileSync(file, '');
    const b2 = generation('b2', 10);
    writeFileSync(file, b2.bytes);
    const c = generation('c', 10);
    await new Promise((r) => setTimeout(r, 20));
    await rotate(file, 3, c.bytes); // a is .2, b (truncated, then b2) .1, c live
    const s2 = setup(file, { checkpoint: cp! });
    await until(() => s2.got.length >= b2.lines.length + c.lines.length, 'b2 and c read', s2.t);
    await new Promise((r) => setTimeout(r, 100));
    expect(s2.bodies()).toEqual([...b2.lines, ...c.lines]); // a not again
    expect(s2.drops).toEqual(['file_truncated']);
  });

  it('the checkpointed file deleted and its inode reused by a newer file: every file present is read', async () => {
    const file = path.join(inodeDir(), 'c-json.log');
    const a = generation('a', 30);
    writeFileSync(file, a.bytes);
    const inoA = statSync(file).ino;
    let cp: Checkpoint | undefined;
    const s = setup(file, { commit: (c) => (cp = c) });
    await until(() => s.got.length === a.lines.length, 'a read', s.t);
    for (const r of s.got.slice(0, 12)) acknowledge(r.ack);
    expect(cp?.ino).toBe(inoA);
    await s.t.stop();
    // While the agent is down (max-file=2): b is written and a rotated away; the next live file
    // gets a's inode, born later.
    const b = generation('b', 10);
    await rotate(file, 2, b.bytes); // a is .1, b live
    const c = generation('c', 10);
    await rotate(file, 2, c.bytes, inoA); // a deleted, b is .1, c live on a's inode
    expect(statSync(file).ino, 'precondition: the filesystem reuses the freed inode').toBe(inoA);
    expect(statSync(file).birthtimeMs).not.toBe(cp?.btime);
    const s2 = setup(file, { checkpoint: cp! });
    await until(() => s2.got.length >= b.lines.length + c.lines.length, 'b and c read', s2.t);
    await new Promise((r) => setTimeout(r, 100));
    expect(s2.bodies()).toEqual([...b.lines, ...c.lines]);
    expect(s2.drops).toEqual(['rotated_away']);
  });
});

describe('a generation deleted before discovery ran', () => {
  it('is still read: the live file is opened as soon as a notification names it', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c-json.log');
    const a = generation('a', 20);
    writeFileSync(file, a.bytes);
    const s = setup(file, { watch: true, pollMs: 20 });
    await until(() => s.got.length === a.lines.length, 'generation a read', s.t);

    // Discovery (stat, readdir, open) runs in libuv's thread pool behind reads and checkpoint
    // writes; on a loaded host it can fall behind Docker. Stand-in: every pool thread is blocked
    // on opening a FIFO that has no writer yet.
    const fifos = [0, 1, 2, 3].map((i) => path.join(dir, `fifo-${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const blocked = fifos.map((f) => open(f, 'r'));
    const b = generation('b', 20);
    const c = generation('c', 20);
    try {
      await new Promise((r) => setTimeout(r, 50));
      // max-file=1: b is created, filled, and deleted again before discovery gets to it.
      unlinkSync(file);
      writeFileSync(file, b.bytes);
      await new Promise((r) => setTimeout(r, 100));
      unlinkSync(file);
      writeFileSync(file, c.bytes);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      // Writers: the blocked opens complete and the pool is free again.
      for (const f of fifos) closeSync(openSync(f, 'w'));
      for (const h of await Promise.all(blocked)) await h.close();
    }
    const all = [...a.lines, ...b.lines, ...c.lines];
    await until(() => s.got.length >= all.length, 'generations b and c read', s.t).catch(
      (err: unknown) => {
        throw new Error(
          `${String(err)}; got ${s.got.length} of ${all.length}, drops ${s.drops.join(',') || 'none'}`,
        );
      },
    );
    expect(s.bodies()).toEqual(all);
    expect(s.drops).toEqual([]);
  });
});

describe('a generation created and deleted while the main thread is busy', () => {
  it('is read: the grabber thread opens it when the notification comes', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c-json.log');
    const a = generation('a', 20);
    writeFileSync(file, a.bytes);
    const s = setup(file, { watch: true, pollMs: 20 });
    await until(() => s.got.length === a.lines.length, 'generation a read', s.t);
    // The grabber thread watches the directory (its own inotify instance beside the main
    // thread's: two watches of the directory's inode in this process).
    const dirIno = statSync(dir).ino;
    await until(() => inotifyWatchesOf(dirIno) >= 2, 'the grabber thread to watch', s.t);

    const b = generation('b', 20);
    const c = generation('c', 20);
    writeFileSync(path.join(dir, 'stage-b'), b.bytes);
    writeFileSync(path.join(dir, 'stage-c'), c.bytes);
    // Docker (max-file=1) in another process: b is created, filled and deleted again while this
    // thread is busy (a long record through processing, a GC pause on a loaded host).
    const docker = spawn(
      'sh',
      [
        '-c',
        'sleep 0.1; rm c-json.log; cat stage-b > c-json.log; sleep 0.2; rm c-json.log; cat stage-c > c-json.log',
      ],
      { cwd: dir },
    );
    const exited = new Promise((r) => docker.on('exit', r));
    const end = Date.now() + 1000;
    while (Date.now() < end) {
      // busy: no event of this thread runs
    }
    await exited;
    const all = [...a.lines, ...b.lines, ...c.lines];
    await until(() => s.got.length >= all.length, 'generations b and c read', s.t).catch(
      (err: unknown) => {
        throw new Error(
          `${String(err)}; got ${s.got.length} of ${all.length}, drops ${s.drops.join(',') || 'none'}`,
        );
      },
    );
    expect(s.bodies()).toEqual(all);
    expect(s.drops).toEqual([]);
  });
});
