// A Docker-like json-file writer on the real filesystem (for tailer tests): complete and
// partial records, rotation by rename (max-file >= 2) and by delete-and-recreate (max-file = 1),
// truncation.
import {
  appendFileSync,
  existsSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { encodeJsonFileLine } from '../../../src/logs/jsonfile.js';

export class FakeDockerLog {
  readonly file: string;
  private t = 1_700_000_000_000_000_000n;
  constructor(
    readonly dir: string,
    readonly maxFiles = 3,
  ) {
    this.file = path.join(dir, 'c-json.log');
    writeFileSync(this.file, '');
  }

  private time(): string {
    this.t += 1_001n;
    const sec = this.t / 1_000_000_000n;
    const ns = this.t % 1_000_000_000n;
    return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${ns.toString().padStart(9, '0')}Z`;
  }

  /** One json-file record; `complete` false writes a partial fragment (no trailing \n in log). */
  write(stream: 'stdout' | 'stderr', log: string, complete = true): void {
    appendFileSync(this.file, encodeJsonFileLine(complete ? `${log}\n` : log, stream, this.time()));
  }

  raw(bytes: Buffer | string): void {
    appendFileSync(this.file, bytes);
  }

  /** Returns true when the oldest generation was deleted. */
  rotateRename(): boolean {
    const liveBorn = statSync(this.file).birthtimeMs;
    let deleted = false;
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
      const to = `${this.file}.${i}`;
      if (i === this.maxFiles - 1 && existsSync(to)) {
        unlinkSync(to);
        deleted = true;
      }
      if (existsSync(from)) renameSync(from, to);
    }
    this.createLive(liveBorn);
    return deleted;
  }

  deleteRecreate(): void {
    const liveBorn = statSync(this.file).birthtimeMs;
    unlinkSync(this.file);
    this.createLive(liveBorn);
  }

  /**
   * A new empty live file, born after `after` (the previous live file's birth time): Docker writes
   * max-size bytes between two rotations, never two generations within one tick of the kernel's
   * file clock (1-4 ms), and the tailer tells a truncated file from a reused inode by birth time.
   */
  private createLive(after: number): void {
    for (;;) {
      writeFileSync(this.file, '');
      if (statSync(this.file).birthtimeMs !== after) return;
      unlinkSync(this.file);
      const until = Date.now() + 2;
      while (Date.now() < until) {
        /* the next tick */
      }
    }
  }

  truncate(): void {
    truncateSync(this.file, 0);
  }

  liveInode(): number {
    return statSync(this.file).ino;
  }
}
