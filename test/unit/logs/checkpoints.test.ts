// The checkpoint store on the real filesystem: atomic replacement, fsync on and off, coalesced
// writes, a corrupt file set aside, version 1 files read, a read-only state dir that fails
// writes without losing what is in memory and recovers once writable again.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CHECKPOINT_FILE,
  CheckpointStore,
  type Checkpoint,
} from '../../../src/logs/checkpoints.js';

import fc from 'fast-check';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hm-cp-'));
  dirs.push(d);
  return d;
}
const cp = (offset: number): Checkpoint => ({
  path: '/x/c-json.log',
  dev: 1,
  ino: 2,
  fp: 'ab',
  fpLen: 2,
  offset,
});

async function fileHandleProto(dir: string): Promise<{ sync: () => Promise<void> }> {
  const fh = await open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(fh) as { sync: () => Promise<void> };
  await fh.close();
  return proto;
}

describe('checkpoint store', () => {
  it('replaces the file atomically (no temporary left), reads it back, and coalesces concurrent flushes', async () => {
    const dir = tempDir();
    const s = new CheckpointStore(dir, silent);
    expect(s.firstStart).toBe(true);
    s.set('a', cp(10));
    s.setApi('b', { stdout: { t: '1700000000000000000', n: 2 } });
    await Promise.all([s.flush(), s.flush(), s.flush()]);
    expect(s.writeCount).toBe(1);
    expect(readdirSync(dir).sort()).toEqual([CHECKPOINT_FILE]);
    // Unchanged entries are not written again.
    s.set('a', cp(10));
    await s.flush();
    expect(s.writeCount).toBe(1);
    const again = new CheckpointStore(dir, silent);
    expect(again.firstStart).toBe(false);
    expect(again.get('a')).toEqual(cp(10));
    expect(again.getApi('b')).toEqual({ stdout: { t: '1700000000000000000', n: 2 } });
    expect(again.keys().sort()).toEqual(['a', 'b']);
  });

  it('keeps a file birth time (it tells a file truncated in place from a reused inode), and a change of it is written', async () => {
    const dir = tempDir();
    const s = new CheckpointStore(dir, silent);
    const born = { ...cp(10), btime: 1796231156072.6401 };
    s.set('a', born);
    await s.flush();
    expect(new CheckpointStore(dir, silent).get('a')).toEqual(born);
    s.set('a', { ...born, btime: born.btime + 1 });
    await s.flush();
    expect(s.writeCount).toBe(2);
    expect(new CheckpointStore(dir, silent).get('a')?.btime).toBe(born.btime + 1);
  });

  it('writes a new file and renames it over the old one; a write that fails leaves the old one whole', async () => {
    const dir = tempDir();
    const file = path.join(dir, CHECKPOINT_FILE);
    const s = new CheckpointStore(dir, silent);
    s.set('a', cp(10));
    await s.flush();
    const first = statSync(file).ino;
    s.set('a', cp(20));
    await s.flush();
    // a new inode: the file was replaced, not rewritten in place (a crash mid-write of an
    // in-place rewrite leaves a truncated file)
    expect(statSync(file).ino).not.toBe(first);
    const before = readFileSync(file, 'utf8');
    // the temporary file cannot be written (a directory in its place)
    mkdirSync(`${file}.tmp`);
    s.set('a', cp(30));
    await expect(s.flush()).rejects.toThrow(/EISDIR/);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(new CheckpointStore(dir, silent).get('a')).toEqual(cp(20));
  });

  it('fsyncs the new file before the rename when checkpoint_fsync is on, and not when off', async () => {
    const dir = tempDir();
    const proto = await fileHandleProto(dir);
    const sync = vi.spyOn(proto, 'sync');
    const on = new CheckpointStore(path.join(dir, 'on'), silent, true);
    on.set('a', cp(1));
    await on.flush();
    on.set('a', cp(2));
    // at the moment of the sync the new content is in the temporary file and not yet renamed
    // over the checkpoint file
    const seen: Array<{ tmp: boolean; renamed: boolean }> = [];
    const onFile = path.join(dir, 'on', CHECKPOINT_FILE);
    sync.mockImplementation(() => {
      seen.push({
        tmp: existsSync(`${onFile}.tmp`),
        renamed:
          (JSON.parse(readFileSync(onFile, 'utf8')) as { files: Record<string, Checkpoint> }).files
            .a?.offset === 2,
      });
      return Promise.resolve();
    });
    await on.flush();
    expect(seen).toEqual([{ tmp: true, renamed: false }]);
    sync.mockRestore();
    expect(new CheckpointStore(path.join(dir, 'on'), silent).get('a')).toEqual(cp(2));
    const calls = vi.spyOn(proto, 'sync');
    const off = new CheckpointStore(path.join(dir, 'off'), silent, false);
    off.set('a', cp(1));
    await off.flush();
    expect(calls).not.toHaveBeenCalled();
    expect(new CheckpointStore(path.join(dir, 'off'), silent).get('a')).toEqual(cp(1));
  });

  it('writes exactly the entries it holds, however they were set, replaced and deleted (property)', async () => {
    // Each entry's JSON is kept between writes while the entry is the same object: the file must
    // still be JSON.stringify of the whole state after any sequence of changes.
    const op = fc.oneof(
      fc.record({ k: fc.constantFrom('a', 'b', 'c', 'd"q', '__proto__'), off: fc.nat(1e6) }),
      fc.record({ del: fc.constantFrom('a', 'b', 'c', 'd"q', '__proto__') }),
      fc.record({ api: fc.constantFrom('a', 'e'), t: fc.nat(1e9) }),
      fc.constant('flush' as const),
    );
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        const dir = path.join(tempDir(), `r${round++}`);
        const s = new CheckpointStore(dir, silent, false);
        const files = new Map<string, Checkpoint>();
        const api = new Map<string, unknown>();
        const check = async (): Promise<void> => {
          await s.flush(true);
          const want = JSON.stringify({
            version: 2,
            files: Object.fromEntries(files),
            api: Object.fromEntries(api),
          });
          expect(readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8')).toBe(want);
          const again = new CheckpointStore(dir, silent);
          for (const [k, v] of files) expect(again.get(k)).toEqual(v);
        };
        for (const o of ops) {
          if (o === 'flush') await check();
          else if ('del' in o) {
            s.delete(o.del);
            files.delete(o.del);
            api.delete(o.del);
          } else if ('api' in o) {
            const c = { stdout: { t: String(o.t), n: 0 }, stderr: { t: String(o.t), n: 1 } };
            s.setApi(o.api, c);
            api.set(o.api, c);
          } else {
            s.set(o.k, cp(o.off));
            files.set(o.k, cp(o.off));
          }
        }
        await check();
      }),
      { numRuns: 60 },
    );
  });

  it('sets a corrupt file aside with a warning and starts empty', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, CHECKPOINT_FILE), '{"version":2,"files":{"a":{"path":1}}');
    const warn = vi.fn();
    const s = new CheckpointStore(dir, { ...silent, warn });
    expect(s.keys()).toEqual([]);
    expect(s.firstStart).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
    const aside = readdirSync(dir).filter((f) => f.startsWith(`${CHECKPOINT_FILE}.corrupt-`));
    expect(aside).toHaveLength(1);
    expect(existsSync(path.join(dir, CHECKPOINT_FILE))).toBe(false);
  });

  it('reads a version 1 file, including Engine API cursors stored as fake file entries', () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, CHECKPOINT_FILE),
      JSON.stringify({
        version: 1,
        checkpoints: {
          a: cp(5),
          b: {
            path: 'engine-api:b',
            dev: 0,
            ino: 0,
            fp: '{"stderr":{"t":"12","n":1}}',
            fpLen: 0,
            offset: 0,
          },
        },
      }),
    );
    const s = new CheckpointStore(dir, silent);
    expect(s.get('a')).toEqual(cp(5));
    expect(s.get('b')).toBeUndefined();
    expect(s.getApi('b')).toEqual({ stderr: { t: '12', n: 1 } });
  });

  it('a read-only state dir fails the write (the caller warns), keeps the entries, and recovers when writable', async () => {
    const dir = tempDir();
    const state = path.join(dir, 'state');
    mkdirSync(state);
    // A read-only mount where we may mount (root); otherwise a directory without write permission.
    let undo: () => void;
    if (process.getuid?.() === 0) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', state]);
      undo = () => execFileSync('umount', [state]);
    } else {
      chmodSync(state, 0o555);
      undo = () => chmodSync(state, 0o755);
    }
    let undone = false;
    try {
      const s = new CheckpointStore(state, silent);
      s.set('a', cp(42));
      const err = await s.flush().then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toMatch(/^(EROFS|EACCES)$/);
      expect(err?.message).toContain(state);
      expect(s.get('a')).toEqual(cp(42));
      expect(s.fault).toContain(path.join(state, CHECKPOINT_FILE));
      expect(s.writeFailures).toBe(1);
      undo();
      undone = true;
      await s.flush();
      expect(s.writeCount).toBe(1);
      expect(s.fault).toBeUndefined();
      expect(JSON.parse(readFileSync(path.join(state, CHECKPOINT_FILE), 'utf8'))).toMatchObject({
        files: { a: cp(42) },
      });
    } finally {
      if (!undone) undo();
    }
  });

  it('a state dir that is a regular file does not throw: the store is in fault (naming the path) and recovers once it is a directory', async () => {
    const dir = tempDir();
    const state = path.join(dir, 'state');
    writeFileSync(state, 'not a directory');
    const s = new CheckpointStore(state, silent);
    expect(s.fault).toContain(path.join(state, CHECKPOINT_FILE));
    expect(s.firstStart).toBe(false);
    s.set('a', cp(1));
    await expect(s.flush()).rejects.toThrow();
    rmSync(state);
    mkdirSync(state);
    await s.flush();
    expect(s.fault).toBeUndefined();
    expect(new CheckpointStore(state, silent).get('a')).toEqual(cp(1));
  });
});
