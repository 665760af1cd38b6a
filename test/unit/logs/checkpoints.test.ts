// The checkpoint store on the real filesystem: two copies rewritten in place (O_DSYNC with fsync
// on), the newest whole copy read at start whatever byte a write was cut at, a store killed
// mid-write (SIGKILL) losing nothing it had committed, coalesced writes, a corrupt file set aside,
// version 1 files read, a read-only state dir that fails writes without losing what is in memory
// and recovers once writable again, a state dir replaced while running.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  constants,
  existsSync,
  readlinkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CHECKPOINT_FILE,
  CHECKPOINT_NEXT_FILE,
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

/** The open flags of this process's descriptors on `file` (from /proc/self/fdinfo). */
function openFlags(file: string): number[] {
  const out: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== file) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (m) out.push(parseInt(m[1]!, 8));
  }
  return out;
}

/** The state a copy holds: its JSON without the sequence number and checksum. */
function stateOf(file: string): {
  version: number;
  files: Record<string, Checkpoint>;
  api: object;
} {
  const o = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete o.seq;
  delete o.sum;
  return o as { version: number; files: Record<string, Checkpoint>; api: object };
}

describe('checkpoint store', () => {
  it('writes two whole copies in place, reads them back, and coalesces concurrent flushes', async () => {
    const dir = tempDir();
    const s = new CheckpointStore(dir, silent);
    expect(s.firstStart).toBe(true);
    s.set('a', cp(10));
    s.setApi('b', { stdout: { t: '1700000000000000000', n: 2 } });
    await Promise.all([s.flush(), s.flush(), s.flush()]);
    expect(s.writeCount).toBe(1);
    await s.settle();
    expect(readdirSync(dir).sort()).toEqual([CHECKPOINT_FILE, CHECKPOINT_NEXT_FILE]);
    const want = {
      version: 2,
      files: { a: cp(10) },
      api: { b: { stdout: { t: '1700000000000000000', n: 2 } } },
    };
    expect(stateOf(path.join(dir, CHECKPOINT_FILE))).toEqual(want);
    expect(stateOf(path.join(dir, CHECKPOINT_NEXT_FILE))).toEqual(want);
    // Rewritten in place: the same files (no new inode, no temporary file per write).
    const inodes = readdirSync(dir).map((f) => statSync(path.join(dir, f)).ino);
    s.set('a', cp(11));
    await s.flush();
    await s.settle();
    expect(readdirSync(dir).map((f) => statSync(path.join(dir, f)).ino)).toEqual(inodes);
    // Unchanged entries are not written again.
    s.set('a', cp(11));
    await s.flush();
    expect(s.writeCount).toBe(2);
    const again = new CheckpointStore(dir, silent);
    expect(again.firstStart).toBe(false);
    expect(again.get('a')).toEqual(cp(11));
    expect(again.getApi('b')).toEqual({ stdout: { t: '1700000000000000000', n: 2 } });
    expect(again.keys().sort()).toEqual(['a', 'b']);
    // A smaller state leaves no stale bytes: the rest of the file is spaces.
    s.delete('b');
    await s.flush();
    await s.settle();
    const text = readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ files: { a: cp(11) }, api: {} });
    expect(text.trimEnd()).not.toContain('1700000000000000000');
    await s.close();
  });

  it("each copy's checksum is FNV-1a (32 bits) of its text without the sum: what earlier versions wrote and read", async () => {
    // A reference in BigInt arithmetic, independent of the store's 32-bit integer loop.
    const fnv1a = (t: string): string => {
      let h = 0x811c9dc5n;
      for (let i = 0; i < t.length; i++)
        h = ((h ^ BigInt(t.charCodeAt(i))) * 0x01000193n) & 0xffffffffn;
      return h.toString(16).padStart(8, '0');
    };
    expect(['', 'a', 'foobar'].map(fnv1a)).toEqual(['811c9dc5', 'e40c292c', 'bf9cf968']);
    const dir = tempDir();
    const s = new CheckpointStore(dir, silent);
    for (let k = 0; k < 40; k++) s.set(`c${k}`, cp(1000 + k));
    await s.flush(true);
    await s.settle();
    for (const f of [CHECKPOINT_FILE, CHECKPOINT_NEXT_FILE]) {
      const text = readFileSync(path.join(dir, f), 'utf8').trimEnd();
      const m = /^(.*),"sum":"([0-9a-f]{8})"\}$/s.exec(text);
      expect(m, f).not.toBeNull();
      expect(m![2]).toBe(fnv1a(`${m![1]}}`));
    }
    await s.close();
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

  it('a write cut at any byte leaves the newest whole copy to read, never a mix of two states', async () => {
    // What a crash or power loss mid-write leaves: the new state's first bytes over the old
    // state's, at every cut. Offsets 1999 -> 2000 would mix into 2999 (past what was delivered)
    // without the checksum.
    const dir = tempDir();
    const next = path.join(dir, CHECKPOINT_NEXT_FILE);
    const main = path.join(dir, CHECKPOINT_FILE);
    const s = new CheckpointStore(dir, silent, false);
    s.set('a', { ...cp(1999), path: '/x/a' });
    s.set('b', cp(1999));
    await s.flush();
    await s.settle();
    const old = readFileSync(next);
    s.set('a', { ...cp(2000), path: '/x/a' });
    s.set('b', cp(2000));
    await s.flush();
    await s.settle();
    const fresh = readFileSync(next);
    expect(fresh.length).toBe(old.length);
    for (const [torn, other] of [
      [next, main],
      [main, next],
    ] as const) {
      for (let at = 0; at <= fresh.length; at++) {
        const d = tempDir();
        writeFileSync(
          path.join(d, path.basename(torn)),
          Buffer.concat([fresh.subarray(0, at), old.subarray(at)]),
        );
        // the partner: the old state when the first copy was cut (the next file is written first),
        // the new one when the second was
        writeFileSync(path.join(d, path.basename(other)), torn === next ? old : fresh);
        const got = new CheckpointStore(d, silent).get('b')?.offset;
        // whole again when what the cut left of the old bytes is the same as the new ones
        const whole =
          Buffer.concat([fresh.subarray(0, at), old.subarray(at)])
            .toString()
            .trimEnd() === fresh.toString().trimEnd();
        if (torn === next) expect(got, `next file cut at ${at}`).toBe(whole ? 2000 : 1999);
        else expect(got, `checkpoint file cut at ${at}`).toBe(2000);
        rmSync(d, { recursive: true });
      }
    }
    await s.close();
  });

  it('after a cut-short copy, the next write rewrites that copy first and leaves the whole one alone', async () => {
    const dir = tempDir();
    const main = path.join(dir, CHECKPOINT_FILE);
    const next = path.join(dir, CHECKPOINT_NEXT_FILE);
    const s = new CheckpointStore(dir, silent);
    s.set('a', cp(1));
    await s.flush();
    s.set('a', cp(2));
    await s.flush();
    await s.close();
    // the checkpoint file cut short: the next file (offset 2) is the only whole copy
    writeFileSync(main, readFileSync(main).subarray(0, 20));
    const r = new CheckpointStore(dir, silent);
    expect(r.get('a')).toEqual(cp(2));
    const before = readFileSync(next, 'utf8');
    r.set('a', cp(3));
    await r.flush();
    // the write returned: the checkpoint file holds the new state, the next file is untouched
    // until its copy runs (the whole copy is not rewritten while it is the only one)
    expect(stateOf(main).files.a).toEqual(cp(3));
    await r.settle();
    expect(readFileSync(next, 'utf8')).not.toBe(before);
    expect(stateOf(next).files.a).toEqual(cp(3));
    await r.close();
  });

  it('a store killed (SIGKILL) while writing loses nothing it had committed', async () => {
    // A child process writes checkpoints as fast as it can and prints each offset once its flush
    // returned; killed at random moments, the offset read back is never below the last printed.
    const dir = tempDir();
    const script = path.join(dir, 'writer.mts');
    const storeModule = new URL('../../../src/logs/checkpoints.ts', import.meta.url).pathname;
    writeFileSync(
      script,
      `import { pino } from ${JSON.stringify(createRequire(import.meta.url).resolve('pino'))};
import { CheckpointStore } from ${JSON.stringify(storeModule)};
const s = new CheckpointStore(process.argv[2], pino({ level: 'silent' }));
let off = s.get('a')?.offset ?? 0;
for (;;) {
  off += 1 + Math.floor(Math.random() * 5000);
  s.set('a', { path: '/x/'.padEnd(1 + Math.floor(Math.random() * 9000), 'p'), dev: 1, ino: 2, fp: 'ab', fpLen: 2, offset: off });
  await s.flush();
  process.stdout.write(off + '\\n');
}
`,
    );
    const state = path.join(dir, 'state');
    for (let round = 0; round < 12; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, state], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (out.split('\n').length < 3) return;
          clearInterval(poll);
          setTimeout(() => child.kill('SIGKILL'), Math.random() * 30);
        }, 5);
        child.on('exit', () => resolve());
      });
      const printed = out.trim().split('\n').map(Number);
      expect(printed.length, 'flushes before the kill').toBeGreaterThanOrEqual(2);
      const committed = printed[printed.length - 1]!;
      const got = new CheckpointStore(state, silent).get('a')?.offset;
      expect(got, `round ${round}`).toBeGreaterThanOrEqual(committed);
    }
  }, 60_000);

  it('opens its copies with O_DSYNC when checkpoint_fsync is on (a write returns once on disk), without when off', async () => {
    const dir = tempDir();
    const on = new CheckpointStore(path.join(dir, 'on'), silent, true);
    on.set('a', cp(1));
    await on.flush();
    await on.settle();
    for (const f of [CHECKPOINT_FILE, CHECKPOINT_NEXT_FILE]) {
      const flags = openFlags(path.join(dir, 'on', f));
      expect(flags).toHaveLength(1);
      expect(flags[0]! & constants.O_DSYNC).toBe(constants.O_DSYNC);
    }
    await on.close();
    expect(openFlags(path.join(dir, 'on', CHECKPOINT_FILE))).toHaveLength(0);
    const off = new CheckpointStore(path.join(dir, 'off'), silent, false);
    off.set('a', cp(1));
    await off.flush();
    await off.settle();
    const flags = openFlags(path.join(dir, 'off', CHECKPOINT_FILE));
    expect(flags).toHaveLength(1);
    expect(flags[0]! & constants.O_DSYNC).toBe(0);
    await off.close();
    expect(new CheckpointStore(path.join(dir, 'off'), silent).get('a')).toEqual(cp(1));
  });

  it('a state dir removed and made again while running: writes reach the new directory', async () => {
    const dir = tempDir();
    const state = path.join(dir, 'state');
    const s = new CheckpointStore(state, silent, false);
    s.set('a', cp(1));
    await s.flush();
    await s.settle();
    rmSync(state, { recursive: true });
    mkdirSync(state);
    // the descriptors are checked against their paths at most once a second
    await new Promise((r) => setTimeout(r, 1100));
    s.set('a', cp(2));
    await s.flush();
    s.set('a', cp(3));
    await s.flush();
    await s.settle();
    expect(stateOf(path.join(state, CHECKPOINT_FILE)).files.a).toEqual(cp(3));
    expect(new CheckpointStore(state, silent).get('a')).toEqual(cp(3));
    await s.close();
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
          await s.settle();
          const want = JSON.stringify({
            version: 2,
            files: Object.fromEntries(files),
            api: Object.fromEntries(api),
          });
          for (const f of [CHECKPOINT_FILE, CHECKPOINT_NEXT_FILE])
            expect(JSON.stringify(stateOf(path.join(dir, f)))).toBe(want);
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

  it('a file written by an earlier version (no sequence number) after a newer next file wins when it is newer', async () => {
    // A downgrade writes log-checkpoints.json by rename and leaves the next file stale; after the
    // upgrade the checkpoint file's entries are the ones to use.
    const dir = tempDir();
    const s = new CheckpointStore(dir, silent, false);
    s.set('a', cp(10));
    await s.flush();
    s.set('a', cp(20));
    await s.flush();
    await s.close();
    const main = path.join(dir, CHECKPOINT_FILE);
    writeFileSync(main, JSON.stringify({ version: 2, files: { a: cp(90) }, api: {} }));
    const next = path.join(dir, CHECKPOINT_NEXT_FILE);
    const past = new Date(Date.now() - 60_000);
    utimesSync(next, past, past);
    expect(new CheckpointStore(dir, silent).get('a')).toEqual(cp(90));
    // the other way round (the earlier version's file older than the next file): the next file
    utimesSync(main, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(new CheckpointStore(dir, silent).get('a')).toEqual(cp(20));
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
