// Checkpoint store: per source, where everything before has been delivered: for a file tailer the
// identity of the log file and an offset, for an Engine API reader its cursor. One JSON file,
// replaced atomically (tmp, fsync, rename); sources set entries as their ack trackers commit, and
// the export loop writes once per acknowledged batch (concurrent flushes coalesce).
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
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

/** The file: `{"version":2,"files":{key: Checkpoint},"api":{key: ApiCursor}}`. */
export const CHECKPOINT_FILE = 'log-checkpoints.json';

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
    let text: string | undefined;
    let unreadable = false;
    try {
      mkdirSync(dir, { recursive: true });
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT') {
        unreadable = true;
        this.faultText = `the log checkpoint file ${this.file} cannot be read (${describeFsError(err)})`;
        this.log.warn(
          { err, file: this.file },
          'The log state directory is not usable; log shipping goes on without checkpoints (lines may be sent again after a restart) until it is fixed.',
        );
      }
    }
    // Unreadable state: not a first start (start_at does not skip anything).
    this.firstStart = text === undefined && !unreadable;
    if (text !== undefined) {
      try {
        this.load(JSON.parse(text) as unknown);
      } catch (err) {
        const aside = `${this.file}.corrupt-${Date.now()}`;
        try {
          renameSync(this.file, aside);
          this.setAsideText = `the corrupt log checkpoint file ${this.file} was set aside as ${aside}; its logs are read again from their start`;
        } catch (e) {
          this.faultText = `the corrupt log checkpoint file ${this.file} cannot be set aside (${describeFsError(e)})`;
        }
        this.files.clear();
        this.api.clear();
        this.log.warn(
          { err, file: this.file, movedTo: aside },
          'The log checkpoint file is corrupt; it was set aside and log files are read again from their start.',
        );
      }
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
        this.faultText = `writing ${this.file} failed (${describeFsError(err)})`;
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
    const text = `{"version":2,"files":{${files}},"api":${JSON.stringify(Object.fromEntries(this.api))}}`;
    const tmp = `${this.file}.tmp`;
    // The state dir may have been removed or replaced since the start (recovery from "not a
    // directory" needs no restart): made again when the temporary file cannot be created for
    // want of it (not before every write: one mkdir per acknowledged batch was 2 % of the CPU).
    let fh;
    try {
      fh = await open(tmp, 'w', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      await mkdir(this.dir, { recursive: true });
      fh = await open(tmp, 'w', 0o600);
    }
    try {
      try {
        await fh.writeFile(text);
        if (this.fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      // A full disk: do not leave a partial temporary file taking the space that is left.
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    this.writes++;
  }
}
