// Checkpoint store: per container, the identity of the log file being read and the offset up to
// which every line has been delivered. One JSON file, replaced atomically (tmp, fsync, rename).
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../util/logger.js';

export interface Checkpoint {
  /** The container's live log path when the checkpoint was taken (for humans). */
  path: string;
  dev: number;
  ino: number;
  fp: string;
  fpLen: number;
  offset: number;
}

interface FileShape {
  version: 1;
  checkpoints: Record<string, Checkpoint>;
}

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
    c.offset >= 0
  );
}

export class CheckpointStore {
  readonly file: string;
  private readonly entries = new Map<string, Checkpoint>();
  /** True when no checkpoint file existed (the agent's first start with this state dir). */
  readonly firstStart: boolean;
  private dirty = false;
  private writing: Promise<void> | undefined;
  private writes = 0;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly fsync = true,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, CHECKPOINT_FILE);
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.firstStart = text === undefined;
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as FileShape;
        if (parsed?.version !== 1 || typeof parsed.checkpoints !== 'object' || !parsed.checkpoints)
          throw new Error('unexpected layout');
        for (const [k, v] of Object.entries(parsed.checkpoints)) {
          if (!isCheckpoint(v)) throw new Error(`bad entry ${k}`);
          this.entries.set(k, { ...v });
        }
      } catch (err) {
        const aside = `${this.file}.corrupt-${Date.now()}`;
        renameSync(this.file, aside);
        this.entries.clear();
        this.log.warn(
          { err, file: this.file, movedTo: aside },
          'The log checkpoint file is corrupt; it was set aside and log files are read again from their start.',
        );
      }
    }
  }

  get(key: string): Checkpoint | undefined {
    return this.entries.get(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  set(key: string, cp: Checkpoint): void {
    const old = this.entries.get(key);
    if (
      old &&
      old.offset === cp.offset &&
      old.ino === cp.ino &&
      old.dev === cp.dev &&
      old.fp === cp.fp &&
      old.fpLen === cp.fpLen
    )
      return;
    this.entries.set(key, cp);
    this.dirty = true;
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.dirty = true;
  }

  /** Number of completed writes (tests). */
  get writeCount(): number {
    return this.writes;
  }

  /** Persists the current entries if they changed; concurrent calls coalesce. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (!this.dirty) return;
    this.dirty = false;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
    });
    await this.writing;
  }

  private async write(): Promise<void> {
    const body: FileShape = { version: 1, checkpoints: Object.fromEntries(this.entries) };
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(body));
      if (this.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    this.writes++;
  }
}
