// A compressed json-file generation (`<id>-json.log.N.gz`, `--log-opt compress=true`) read as if
// it were the plain file: positions are offsets in the uncompressed content, so checkpoints keep
// their meaning (the fingerprint of the first bytes is the one the plain file had). Reading is
// streamed through node:zlib: the tailer reads forward, so only what lies between the last read
// and the next is decompressed and kept; a read before that (rare: a head check) starts the
// stream again, except for the first bytes, which are kept.
import { createReadStream, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

/** What the tailer needs of an open generation (node's FileHandle has it too). */
export interface GenerationHandle {
  /**
   * The descriptor, only on handles whose reads are the file's bytes at that descriptor (a plain
   * file: FileHandle, the tailer's FdGeneration); never on a decompressing one. The tailer's head
   * check reads it directly (tailer.ts headStillSame).
   */
  readonly fd?: number;
  read(
    buf: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }>;
  stat(): Promise<Pick<Stats, 'size' | 'mtimeMs' | 'nlink' | 'dev' | 'ino' | 'birthtimeMs'>>;
  close(): Promise<void>;
}

const HEAD_KEEP = 4096;

/** The uncompressed size from the gzip trailer (ISIZE, mod 2^32: log generations are smaller). */
export async function uncompressedSize(file: string, compressedSize: number): Promise<number> {
  if (compressedSize < 18) return 0;
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, compressedSize - 4);
    return b.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}

export class GzGeneration implements GenerationHandle {
  private it: AsyncIterator<Buffer> | undefined;
  private stream: ReturnType<typeof createGunzip> | undefined;
  /** Decompressed bytes from bufStart on, not yet read past. */
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  private ended = false;
  private head: Buffer = Buffer.alloc(0);
  private closed = false;
  /** Why decompression stopped early, if it did. */
  error: Error | undefined;

  private constructor(
    readonly file: string,
    private readonly st: Stats,
    private readonly size: number,
  ) {}

  /** Opens a `.gz` generation; rejects like open() when it is gone. */
  static async open(file: string): Promise<GzGeneration> {
    const st = await stat(file);
    return new GzGeneration(file, st, await uncompressedSize(file, st.size));
  }

  stat(): Promise<Pick<Stats, 'size' | 'mtimeMs' | 'nlink' | 'dev' | 'ino' | 'birthtimeMs'>> {
    return Promise.resolve({
      size: this.size,
      mtimeMs: this.st.mtimeMs,
      birthtimeMs: this.st.birthtimeMs,
      nlink: this.st.nlink,
      dev: this.st.dev,
      ino: this.st.ino,
    });
  }

  private restart(): void {
    this.stream?.destroy();
    const gunzip = createGunzip();
    const src = createReadStream(this.file);
    src.on('error', (err) => gunzip.destroy(err));
    src.pipe(gunzip);
    this.stream = gunzip;
    this.it = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.buf = Buffer.alloc(0);
    this.bufStart = 0;
    this.ended = false;
  }

  async read(
    out: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }> {
    if (this.closed) throw new Error(`${this.file} is closed`);
    if (position + length <= this.head.length) {
      this.head.copy(out, offset, position, position + length);
      return { bytesRead: length };
    }
    if (!this.it || position < this.bufStart) this.restart();
    // Drop what lies before position; pull until position + length is covered or the end.
    for (;;) {
      const skip = Math.min(this.buf.length, position - this.bufStart);
      if (skip > 0) {
        this.buf = this.buf.subarray(skip);
        this.bufStart += skip;
      }
      if (this.bufStart + this.buf.length >= position + length || this.ended) break;
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it!.next();
      } catch (err) {
        // Not valid gzip (or cut short): what could be decompressed is all there is.
        this.error = err as Error;
        this.ended = true;
        break;
      }
      if (r.done) {
        this.ended = true;
        break;
      }
      const chunk = r.value;
      if (this.head.length < HEAD_KEEP && this.bufStart + this.buf.length === this.head.length) {
        this.head = Buffer.concat([this.head, chunk.subarray(0, HEAD_KEEP - this.head.length)]);
      }
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    if (position < this.bufStart) return { bytesRead: 0 };
    const from = position - this.bufStart;
    const n = Math.max(0, Math.min(length, this.buf.length - from));
    this.buf.copy(out, offset, from, from + n);
    return { bytesRead: n };
  }

  close(): Promise<void> {
    this.closed = true;
    this.stream?.destroy();
    this.stream = undefined;
    this.it = undefined;
    this.buf = Buffer.alloc(0);
    return Promise.resolve();
  }
}
