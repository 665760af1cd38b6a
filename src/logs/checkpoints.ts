// Checkpoint store: per source, where everything before has been delivered: for a file tailer the
// identity of the log file and an offset, for an Engine API reader its cursor. Sources set entries
// as their ack trackers commit, and the export loop writes once per acknowledged batch
// (concurrent flushes coalesce).
//
// Two copies, each rewritten in place (one write on a descriptor kept open, opened with O_DSYNC
// when checkpoint_fsync is on: the write returns once the bytes are on disk). The export loop
// sends its next batch after one such write; creating, syncing and renaming a new file took five
// file-system steps and a journal commit of a new inode each time (README, Performance). Writes
// alternate so that one copy is always whole: a write goes first to a copy whose partner holds a
// whole state (log-checkpoints.json.next normally), and once that write is durable the same state
// is copied into the other (log-checkpoints.json, the file people read) in the background, before
// the next write starts. Each copy carries a sequence number and a checksum; at start the newest
// whole copy wins, so a write cut short by a crash or power loss costs nothing that was
// committed. A copy's text is padded with spaces to its file's size (JSON allows trailing
// whitespace), so a shorter state leaves no stale bytes behind it.
import {
  close,
  constants,
  fstat,
  ftruncate,
  mkdirSync,
  open,
  readFileSync,
  renameSync,
  statSync,
  write,
  type Stats,
} from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../util/logger.js';

/** A file tailer's checkpoint: the file's identity and the offset up to which all is delivered. */
export interface Checkpoint {
  /** The container's live log path when the checkpoint was taken (for humans). */
  path: string;
  dev: number;
  ino: number;
  fp: string;
  fpLen: number;
  offset: number;
  /**
   * The file's birth time (ms; absent where the file system does not keep one). Tells the same
   * file truncated in place (same inode, same birth) from an inode reused by a newer file.
   */
  btime?: number;
}

/** Per stream: the Engine API timestamp (ns, decimal string) and frames consumed at exactly it. */
export interface StreamCursor {
  t: string;
  n: number;
}

/** An Engine API reader's checkpoint. */
export interface ApiCursor {
  stdout?: StreamCursor;
  stderr?: StreamCursor;
}

/**
 * The file: `{"version":2,"seq":N,"files":{key: Checkpoint},"api":{key: ApiCursor},"sum":"..."}`
 * and trailing spaces (`seq` and `sum` are absent in files written before they were added).
 */
export const CHECKPOINT_FILE = 'log-checkpoints.json';
/** The copy written first (see the top of this file). */
export const CHECKPOINT_NEXT_FILE = `${CHECKPOINT_FILE}.next`;

/**
 * Checksum of a copy: FNV-1a (32 bits) over its JSON without the `sum` field. It tells a copy cut
 * short (the new state's first bytes over the old one's) from a whole one; a cryptographic hash
 * cost 1.5 % of the log path's CPU here (createHash per write).
 */
function checksum(body: string): string {
  // The offset basis as a signed 32-bit value (the same bits): 0x811c9dc5 itself is above 2^31,
  // a double, and the optimized loop, which works on 32-bit integers, was thrown away ("lost
  // precision") and compiled again on every call: 30 times in a benchmark run of 100 files.
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < body.length; i++) h = Math.imul(h ^ body.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const SUM_FIELD = ',"sum":"';

/** One copy's text: the state with its sequence number and checksum. */
export function copyText(seq: number, files: string, api: string): string {
  const body = `{"version":2,"seq":${seq},"files":{${files}},"api":${api}}`;
  return `${body.slice(0, -1)}${SUM_FIELD}${checksum(body)}"}`;
}

/** A copy as read at start: whole (parsed, with its sequence number), torn or unreadable. */
type ReadCopy =
  | { kind: 'absent' }
  | { kind: 'unreadable'; err: unknown }
  | { kind: 'corrupt'; err: unknown }
  | { kind: 'whole'; parsed: unknown; seq: number; legacy: boolean; mtimeMs: number };

function readCopy(file: string): ReadCopy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? { kind: 'absent' }
      : { kind: 'unreadable', err };
  }
  try {
    const parsed = JSON.parse(text) as { seq?: unknown; sum?: unknown } | null;
    if (parsed === null || typeof parsed !== 'object') throw new Error('unexpected layout');
    if (parsed.sum !== undefined) {
      const t = text.trimEnd();
      const at = t.lastIndexOf(SUM_FIELD);
      if (at < 0 || checksum(`${t.slice(0, at)}}`) !== parsed.sum)
        throw new Error('checksum mismatch (a write cut short)');
    }
    const legacy = !(typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq));
    const seq = legacy ? 0 : (parsed.seq as number);
    return { kind: 'whole', parsed, seq, legacy, mtimeMs: statSync(file).mtimeMs };
  } catch (err) {
    return { kind: 'corrupt', err };
  }
}

// Plain descriptors, not FileHandle objects: a FileHandle left to the garbage collector (a store
// dropped without close(), as tests do) is an uncaught error from Node.js 26 on.
const openFd = (file: string, flags: number): Promise<number> =>
  new Promise((res, rej) => open(file, flags, 0o600, (e, fd) => (e ? rej(e) : res(fd))));
const fstatFd = (fd: number): Promise<Stats> =>
  new Promise((res, rej) => fstat(fd, (e, st) => (e ? rej(e) : res(st))));
const writeFd = (fd: number, b: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((res, rej) => write(fd, b, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
const truncateFd = (fd: number, len: number): Promise<void> =>
  new Promise((res, rej) => ftruncate(fd, len, (e) => (e ? rej(e) : res())));
const closeFd = (fd: number): Promise<void> => new Promise((res) => close(fd, () => res()));

/** One of the two copies: its path and, once opened, its descriptor and file size. */
interface Copy {
  readonly file: string;
  fd?: number;
  ino: number;
  size: number;
  /** When the descriptor was last checked against the path. */
  checkedAt: number;
  /** Holds the newest committed state, whole (read at start, or written since). */
  whole: boolean;
}

/** How often a write checks that its copy's descriptor still names the file at its path. */
const REOPEN_CHECK_MS = 1000;

function isCheckpoint(v: unknown): v is Checkpoint {
  if (v === null || typeof v !== 'object') return false;
  const c = v as Record<string, unknown>;
  return (
    typeof c.path === 'string' &&
    typeof c.dev === 'number' &&
    typeof c.ino === 'number' &&
    typeof c.fp === 'string' &&
    typeof c.fpLen === 'number' &&
    typeof c.offset === 'number' &&
    c.offset >= 0 &&
    (c.btime === undefined || typeof c.btime === 'number')
  );
}

function streamCursor(v: unknown): StreamCursor | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'string' || !/^\d{1,25}$/.test(o.t)) return undefined;
  if (typeof o.n !== 'number' || !Number.isInteger(o.n) || o.n < 0) return undefined;
  return { t: o.t, n: o.n };
}

/** A valid cursor from untrusted JSON; undefined when it is not one. */
export function parseApiCursor(v: unknown): ApiCursor | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const out: ApiCursor = {};
  for (const s of ['stdout', 'stderr'] as const) {
    if (o[s] === undefined) continue;
    const c = streamCursor(o[s]);
    if (!c) return undefined;
    out[s] = c;
  }
  return out;
}

const CODE_WORDS: Record<string, string> = {
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'the state dir path exists and is not a directory',
  ENOTDIR: 'a part of the state dir path is not a directory',
  EISDIR: 'the checkpoint path is a directory',
};

/** `CODE: what it means` for a file-system error (the code alone for unknown ones). */
function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = e.code;
  if (!code) return e.message ?? String(err);
  const words = CODE_WORDS[code];
  return words ? `${code}: ${words}` : code;
}

function sameCheckpoint(a: Checkpoint, b: Checkpoint): boolean {
  return (
    a.offset === b.offset &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.fp === b.fp &&
    a.fpLen === b.fpLen &&
    a.btime === b.btime &&
    a.path === b.path
  );
}

function sameStream(a: StreamCursor | undefined, b: StreamCursor | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.t === b.t && a.n === b.n);
}

export class CheckpointStore {
  readonly file: string;
  private readonly files = new Map<string, Checkpoint>();
  private readonly api = new Map<string, ApiCursor>();
  /**
   * Each file entry's JSON text (`"key":{...}`), kept while the entry is the same object: a
   * batch moves the entries of a few sources, and the file is written after every batch (with
   * 1,000 containers, 230 KB of JSON each time). Entries are replaced, never changed in place.
   */
  private readonly fileText = new Map<string, { cp: Checkpoint; text: string }>();
  /** True when no checkpoint file existed (the agent's first start with this state dir). */
  readonly firstStart: boolean;
  private dirty = false;
  private writing: Promise<void> | undefined;
  /** The two copies: [log-checkpoints.json, log-checkpoints.json.next]. */
  private readonly copies: [Copy, Copy];
  /** Sequence number of the last state written (or read at start). */
  private seq = 0;
  /** The background write of the second copy (never rejects: a failure is recorded). */
  private copying: Promise<void> | undefined;
  /** The copy whose write failed last (the fault names it). */
  private failedFile: string | undefined;
  private writes = 0;
  private failures = 0;
  private faultText: string | undefined;
  private setAsideText: string | undefined;

  /**
   * Never throws: a state dir that cannot be created or read (read-only, wrong type, no
   * permission) leaves the store empty and in fault (`fault` names the problem and the path);
   * log shipping goes on without persistence and recovers with the first write that succeeds.
   */
  constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly fsync = true,
  ) {
    this.file = path.join(dir, CHECKPOINT_FILE);
    this.copies = [
      { file: this.file, ino: 0, size: 0, checkedAt: 0, whole: false },
      { file: path.join(dir, CHECKPOINT_NEXT_FILE), ino: 0, size: 0, checkedAt: 0, whole: false },
    ];
    let read: ReadCopy[] = [{ kind: 'absent' }, { kind: 'absent' }];
    try {
      mkdirSync(dir, { recursive: true });
      read = this.copies.map((c) => readCopy(c.file));
    } catch (err) {
      read = [{ kind: 'unreadable', err }, { kind: 'absent' }];
    }
    const unreadable = read.findIndex((r) => r.kind === 'unreadable');
    if (unreadable >= 0) {
      const r = read[unreadable] as { err: unknown };
      const file = this.copies[unreadable]!.file;
      this.faultText = `the log checkpoint file ${file} cannot be read (${describeFsError(r.err)})`;
      this.log.warn(
        { err: r.err, file },
        'The log state directory is not usable; log shipping goes on without checkpoints (lines may be sent again after a restart) until it is fixed.',
      );
    }
    // Unreadable state: not a first start (start_at does not skip anything).
    this.firstStart = read.every((r) => r.kind === 'absent');
    // The newest whole copy wins; one whose entries do not check out counts as corrupt.
    // A copy without a sequence number was written by an earlier version (by rename): after a
    // downgrade and an upgrade it is newer than a stale next file, which its mtime tells.
    type Whole = Extract<ReadCopy, { kind: 'whole' }>;
    const newer = (x: Whole, y: Whole): number =>
      x.legacy !== y.legacy
        ? (x.legacy ? x.mtimeMs >= y.mtimeMs : y.mtimeMs < x.mtimeMs)
          ? -1
          : 1
        : y.seq - x.seq;
    const order = [0, 1]
      .filter((i) => read[i]!.kind === 'whole')
      .sort((a, b) => newer(read[a] as Whole, read[b] as Whole) || a - b);
    let loaded = -1;
    for (const i of order) {
      try {
        this.load((read[i] as { parsed: unknown }).parsed);
        loaded = i;
        break;
      } catch (err) {
        this.files.clear();
        this.api.clear();
        read[i] = { kind: 'corrupt', err };
      }
    }
    if (loaded >= 0) {
      this.seq = (read[loaded] as { seq: number }).seq;
      // Only a copy as new as the one read may be the one left alone by the next write.
      for (const [i, r] of read.entries())
        this.copies[i]!.whole = r.kind === 'whole' && r.seq === this.seq;
      const torn = read.findIndex((r) => r.kind === 'corrupt');
      if (torn >= 0)
        this.log.info(
          { file: this.copies[torn]!.file, used: this.copies[loaded]!.file },
          'One copy of the log checkpoints was incomplete (a write cut short); the other, whole copy was used.',
        );
      return;
    }
    // No whole copy: the corrupt ones are set aside and logs are read again from their start.
    for (const [i, r] of read.entries()) {
      if (r.kind !== 'corrupt') continue;
      const file = this.copies[i]!.file;
      const aside = `${file}.corrupt-${Date.now()}`;
      try {
        renameSync(file, aside);
        this.setAsideText ??= `the corrupt log checkpoint file ${file} was set aside as ${aside}; its logs are read again from their start`;
      } catch (e) {
        this.faultText ??= `the corrupt log checkpoint file ${file} cannot be set aside (${describeFsError(e)})`;
      }
      this.log.warn(
        { err: r.err, file, movedTo: aside },
        'The log checkpoint file is corrupt; it was set aside and log files are read again from their start.',
      );
    }
  }

  /** What is wrong with the state dir (names the path), or undefined when it works. */
  get fault(): string | undefined {
    return this.faultText;
  }

  /** A corrupt checkpoint file found at start and set aside (names both paths); not a fault. */
  get notice(): string | undefined {
    return this.setAsideText;
  }

  /** Failed checkpoint writes since start. */
  get writeFailures(): number {
    return this.failures;
  }

  private load(parsed: unknown): void {
    const o = parsed as {
      version?: unknown;
      checkpoints?: unknown;
      files?: unknown;
      api?: unknown;
    };
    if (o === null || typeof o !== 'object') throw new Error('unexpected layout');
    if (o.version === 1 && o.checkpoints && typeof o.checkpoints === 'object') {
      // Version 1 kept Engine API cursors as fake file entries (path engine-api:<id>, cursor in fp).
      for (const [k, v] of Object.entries(o.checkpoints as Record<string, unknown>)) {
        if (!isCheckpoint(v)) throw new Error(`bad entry ${k}`);
        if (v.path.startsWith('engine-api:')) {
          const c = parseApiCursor(JSON.parse(v.fp) as unknown);
          if (c) this.api.set(k, c);
        } else this.files.set(k, { ...v });
      }
      return;
    }
    if (
      o.version !== 2 ||
      typeof o.files !== 'object' ||
      typeof o.api !== 'object' ||
      !o.files ||
      !o.api
    )
      throw new Error('unexpected layout');
    for (const [k, v] of Object.entries(o.files as Record<string, unknown>)) {
      if (!isCheckpoint(v)) throw new Error(`bad file entry ${k}`);
      this.files.set(k, { ...v });
    }
    for (const [k, v] of Object.entries(o.api as Record<string, unknown>)) {
      const c = parseApiCursor(v);
      if (!c) throw new Error(`bad api entry ${k}`);
      this.api.set(k, c);
    }
  }

  get(key: string): Checkpoint | undefined {
    return this.files.get(key);
  }

  getApi(key: string): ApiCursor | undefined {
    return this.api.get(key);
  }

  /** Keys of every entry (file and API). */
  keys(): string[] {
    return [...new Set([...this.files.keys(), ...this.api.keys()])];
  }

  set(key: string, cp: Checkpoint): void {
    const old = this.files.get(key);
    if (old && sameCheckpoint(old, cp)) return;
    this.files.set(key, cp);
    this.dirty = true;
  }

  setApi(key: string, c: ApiCursor): void {
    const old = this.api.get(key);
    if (old && sameStream(old.stdout, c.stdout) && sameStream(old.stderr, c.stderr)) return;
    this.api.set(key, c);
    this.dirty = true;
  }

  delete(key: string): void {
    if (this.files.delete(key)) this.dirty = true;
    this.fileText.delete(key);
    if (this.api.delete(key)) this.dirty = true;
  }

  /** Number of completed writes (tests, benchmark). */
  get writeCount(): number {
    return this.writes;
  }

  /**
   * Persists the current entries if they changed (or, with force, even if not: a store in fault
   * tries again so it recovers without new acks); concurrent calls coalesce into one write.
   */
  async flush(force = false): Promise<void> {
    while (this.writing) await this.writing;
    if (!this.dirty && !force) return;
    this.dirty = false;
    this.writing = this.write()
      .then(() => {
        this.faultText = undefined;
      })
      .catch((err: unknown) => {
        this.dirty = true; // try again with the next flush
        this.failures++;
        this.faultText = `writing ${this.failedFile ?? this.file} failed (${describeFsError(err)})`;
        throw err;
      })
      .finally(() => {
        this.writing = undefined;
      });
    await this.writing;
  }

  private async write(): Promise<void> {
    // The file's layout (CHECKPOINT_FILE), as JSON.stringify of {version, files, api} writes it.
    let files = '';
    for (const [k, cp] of this.files) {
      let t = this.fileText.get(k);
      if (t === undefined || t.cp !== cp) {
        t = { cp, text: `${JSON.stringify(k)}:${JSON.stringify(cp)}` };
        this.fileText.set(k, t);
      }
      files += files === '' ? t.text : `,${t.text}`;
    }
    if (this.fileText.size > this.files.size)
      for (const k of this.fileText.keys()) if (!this.files.has(k)) this.fileText.delete(k);
    const text = copyText(this.seq + 1, files, JSON.stringify(Object.fromEntries(this.api)));
    // The copy of the last write first (its partner is whole again before this one is rewritten).
    if (this.copying) await this.copying;
    const [a, b] = this.copies;
    // Rewrite a copy whose partner is whole: the next file normally; the checkpoint file when it
    // is not whole (first start, a failed or cut-short write), the next file still holding the
    // newest whole state.
    const [first, second] = a.whole ? [b, a] : [a, b];
    await this.writeCopy(first, text);
    this.seq++;
    this.writes++;
    this.copying = this.writeCopy(second, text).catch((err: unknown) => {
      // Counted and in fault; the next flush writes this copy first (and fails if it still cannot).
      this.dirty = true;
      this.failures++;
      this.faultText = `writing ${second.file} failed (${describeFsError(err)})`;
    });
  }

  /** Resolves once the last write's second copy is written too (the agent stopping). */
  async settle(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    await this.copying;
  }

  /**
   * Writes text into a copy in place, padded to the file's size; durable on return when fsync is
   * on. The copy is not whole from the start of the write until it succeeds.
   */
  private async writeCopy(c: Copy, text: string): Promise<void> {
    c.whole = false;
    try {
      await this.writeCopyAt(c, text);
    } catch (err) {
      this.failedFile = c.file;
      throw err;
    }
    c.whole = true;
  }

  private async writeCopyAt(c: Copy, text: string): Promise<void> {
    await this.ensureOpen(c);
    const n = Buffer.byteLength(text);
    const len = Math.max(n + 1, c.size);
    const buf = Buffer.allocUnsafe(len);
    buf.write(text, 0, 'utf8');
    buf.fill(0x20, n, len - 1);
    buf[len - 1] = 0x0a;
    let done = 0;
    while (done < len) {
      const bytesWritten = await writeFd(c.fd!, buf, done, len - done, done);
      if (bytesWritten === 0) throw new Error(`short write to ${c.file}`);
      done += bytesWritten;
    }
    c.size = len;
    // A state that shrank a lot (containers gone) leaves a file mostly of spaces: cut it to size.
    if (len > 2 * n + 65536) {
      await truncateFd(c.fd!, n + 1);
      c.size = n + 1;
    }
  }

  /**
   * Opens a copy once and keeps it open; at most once a second checks that the descriptor still
   * names the file at its path (the state dir removed or replaced: it is opened again there).
   */
  private async ensureOpen(c: Copy): Promise<void> {
    if (c.fd !== undefined && Date.now() - c.checkedAt >= REOPEN_CHECK_MS) {
      c.checkedAt = Date.now();
      const at = await stat(c.file).catch(() => undefined);
      if (!at || at.ino !== c.ino) await this.closeCopy(c);
    }
    if (c.fd !== undefined) return;
    const flags = constants.O_WRONLY | constants.O_CREAT | (this.fsync ? constants.O_DSYNC : 0);
    let fd: number;
    // The state dir may have been removed or replaced since the start (recovery from "not a
    // directory" needs no restart): made again when the file cannot be created for want of it
    // (not before every write: one mkdir per acknowledged batch was 2 % of the CPU).
    try {
      fd = await openFd(c.file, flags);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      await mkdir(this.dir, { recursive: true });
      fd = await openFd(c.file, flags);
    }
    try {
      const st = await fstatFd(fd);
      if (!st.isFile())
        throw Object.assign(new Error(`${c.file} is not a regular file`), { code: 'EISDIR' });
      c.ino = st.ino;
      c.size = st.size;
      c.fd = fd;
      c.checkedAt = Date.now();
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
  }

  private async closeCopy(c: Copy): Promise<void> {
    const fd = c.fd;
    c.fd = undefined;
    if (fd !== undefined) await closeFd(fd);
  }

  /** Closes the copies' descriptors (written again, they are opened again). */
  async close(): Promise<void> {
    await this.settle();
    for (const c of this.copies) await this.closeCopy(c);
  }
}
