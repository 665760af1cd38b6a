// "Run alone" for integration files that need the host to themselves (RUN_ALONE in
// sequencer.ts): a readers-writer lock across the parallel worker processes of one vitest run.
// Every other file holds it shared while it runs; a RUN_ALONE file holds it exclusively, so it
// starts only when no other file is running and no file starts until it is done. The sequencer
// puts the RUN_ALONE files last, so nobody waits long: the exclusive one waits for the other
// worker's current (short: longest first) file, and no shared file is left to wait for it.
//
// The lock is a directory of the run (HARBORMASTER_TEST_LOCK_DIR, made by the globalSetup):
// `shared-<pid>` per shared holder, `exclusive` (its content: the holder's pid) for the
// exclusive one. Entries of processes that no longer exist are ignored and removed, so a killed
// worker never blocks the run.
import { closeSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { sleep } from './exec.js';

export const LOCK_DIR_ENV = 'HARBORMASTER_TEST_LOCK_DIR';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function createExclusively(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The pid holding `exclusive`, or undefined (a stale entry is removed). */
function exclusiveHolder(dir: string): number | undefined {
  return holderOf(path.join(dir, 'exclusive'));
}

/** The pid in a lock file, or undefined (a stale file, of a process gone, is removed). */
function holderOf(file: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (pid === process.pid || alive(pid)) return pid;
  rmSync(file, { force: true });
  return undefined;
}

/** Live shared holders other than this process (stale entries are removed). */
function sharedHolders(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync(dir)) {
    if (!e.startsWith('shared-')) continue;
    const pid = Number(e.slice('shared-'.length));
    if (pid === process.pid) continue;
    if (alive(pid)) out.push(pid);
    else rmSync(path.join(dir, e), { force: true });
  }
  return out;
}

/** Removes a held lock file once: when called, or when the process exits without calling it. */
function releaser(file: string): () => void {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    rmSync(file, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}

export interface HostLock {
  readonly mode: 'shared' | 'exclusive';
  /** How long acquiring it waited, in ms. */
  readonly waitedMs: number;
  release(): void;
}

/**
 * Takes the run's host lock; resolves once held. Without HARBORMASTER_TEST_LOCK_DIR (a single
 * file run outside the globalSetup) there is nobody to share the host with: no lock.
 */
export async function acquireHostLock(mode: 'shared' | 'exclusive'): Promise<HostLock> {
  const dir = process.env[LOCK_DIR_ENV];
  const t0 = Date.now();
  if (!dir) return { mode, waitedMs: 0, release: () => undefined };
  const mine = path.join(dir, mode === 'exclusive' ? 'exclusive' : `shared-${process.pid}`);
  if (mode === 'exclusive') {
    // first claim the lock (no new shared holder gets in), then wait for the running ones
    while (!createExclusively(mine)) {
      exclusiveHolder(dir);
      await sleep(200);
    }
    while (sharedHolders(dir).length > 0) await sleep(200);
  } else {
    for (;;) {
      while (exclusiveHolder(dir) !== undefined) await sleep(200);
      createExclusively(mine);
      // an exclusive holder may have claimed the lock between the check and our entry
      if (exclusiveHolder(dir) === undefined) break;
      rmSync(mine, { force: true });
    }
  }
  return { mode, waitedMs: Date.now() - t0, release: releaser(mine) };
}

/**
 * The lock of a group of files that must not run beside each other (APART in sequencer.ts): the
 * file `group-<name>` in the run's lock directory holds its holder's pid. Resolves once held;
 * take it before the host lock, so a file waiting for its group holds nothing else.
 */
export async function acquireGroupLock(name: string): Promise<HostLock> {
  const dir = process.env[LOCK_DIR_ENV];
  const t0 = Date.now();
  if (!dir) return { mode: 'exclusive', waitedMs: 0, release: () => undefined };
  const mine = path.join(dir, `group-${name}`);
  while (!createExclusively(mine)) {
    holderOf(mine);
    await sleep(200);
  }
  return { mode: 'exclusive', waitedMs: Date.now() - t0, release: releaser(mine) };
}
