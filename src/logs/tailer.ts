// Tails one container's json-file log across rotations.
//
// The tailer keeps an open file handle on every generation of the log it knows about, oldest
// first. Docker rotates either by renaming the live file to `.1` (max-file >= 2) or by deleting
// and recreating it (max-file = 1); in both cases the open handle keeps the old data readable, so
// the old generation is read to its end before the tailer moves on, and nothing is read twice.
// Generations are discovered from file-system notifications on the container directory and a
// poll; a burst of rotations between two looks is caught by listing `<name>.N` as well.
//
// Acknowledgement: every raw json-file line read is registered with the tailer's AckTracker, which
// remembers (file identity, offset after the line). Records carry the tokens of their lines
// (partial lines all of their fragments); malformed or skipped lines are acknowledged at once.
//
// Hot path (one whole line, the usual case): decodeJsonFileLineInto fills one reused result with
// the body as a range of the decoder's slab. When the sink takes runs (the exporter encodes OTLP
// protobuf and the byte checks say no processing stage would change the line), the decoder leaves
// room around the body and the line is encoded right there (src/logs/run.ts): consecutive lines of
// a chunk are one LineRun, one queue entry and one ack unit, and no object per line. Otherwise the
// record is born from that range (no Buffer view) and is its own ack token (AckTracker.nextSeq, no
// token object), so a line costs one object.
// Fragments of longer lines go through PartialLines (src/logs/partial.ts) as before.
// The tracker commits the longest unbroken acknowledged run, and the tailer reports it as its
// checkpoint (commit option): nothing still held anywhere is ever committed past. Only a line end
// where neither stream has a line being reassembled is a commit point: a restart there never
// reads the tail of a delivered partial line as a line of its own.
import { createHash } from 'node:crypto';
import {
  close,
  closeSync,
  fstat,
  fstatSync,
  openSync,
  read,
  readSync,
  watch,
  type FSWatcher,
  type Stats,
} from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AckTracker } from './ack.js';
import type { Checkpoint } from './checkpoints.js';
import { watchForGrabs, type Grab } from './grabber.js';
import { GzGeneration, uncompressedSize, type GenerationHandle } from './gz-generation.js';
import {
  decodeJsonFileLineInto,
  decodedBytes,
  decoderReadBuffer,
  holdSlabRun,
  releaseDecoderReadBuffer,
  slabEndAt,
} from './jsonfile.js';
import { PartialLines, utf8CutEnd, type CompletedLine } from './partial.js';
import { TRUNCATED_ATTR, newRecord, newRecordFromBytes } from './record.js';
import {
  LineRun,
  TRAILER_BYTES,
  frameLine,
  headerBytes,
  observedHalves,
  type RunSink,
} from './run.js';
import type { AttrValue, DropReason, RecordSink, LogResource } from './types.js';

export { utf8Truncate } from './partial.js';

const EMPTY_BODY = Buffer.alloc(0);

/**
 * A generation is identified by device, inode and a fingerprint of its first bytes: at least the
 * first FP_LEN bytes (all checkpoints of earlier versions have that), and through the end of its
 * first line, at most FP_MAX. The first line of a json-file generation carries Docker's timestamp
 * in nanoseconds, so two generations never share it, even when both begin inside a long line (16
 * KiB fragments of the same character) and the second was given the first one's inode (ext4 hands
 * a freed inode to the next file created, and Docker deletes one generation right before it
 * creates the next).
 */
export const FP_LEN = 1024;
export const FP_MAX = 128 * 1024;

/** How many of `head` (a file's first bytes, up to FP_MAX) the fingerprint covers, and whether that is final. */
function fpExtent(head: Buffer): { len: number; done: boolean } {
  const nl = head.indexOf(10);
  const want = nl < 0 ? FP_MAX : Math.min(FP_MAX, Math.max(FP_LEN, nl + 1));
  return { len: Math.min(head.length, want), done: head.length >= want };
}

/** Where the tailer puts records (processing, then the queue); hold() is optional for tests. */
export type TailerSink = Pick<RecordSink, 'waitForSpace' | 'push'> &
  Partial<Pick<RecordSink, 'hold' | 'runs'>>;

// Read buffers are reused: records never keep views into them (the decoder copies bodies out,
// densely, see jsonfile.ts), so one chunk in flight per reading tailer is all the read memory.
const readPool: Buffer[] = [];
const READ_POOL_MAX = 4;
const READ_POOL_MAX_BYTES = 1024 * 1024;

function acquireReadBuffer(size: number): Buffer {
  // In the decoder's WebAssembly memory when it has one free: its body loop runs there.
  const w = decoderReadBuffer(size);
  if (w !== undefined) return w;
  for (let i = readPool.length - 1; i >= 0; i--) {
    if (readPool[i]!.length === size) return readPool.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafeSlow(size);
}

function releaseReadBuffer(buf: Buffer): void {
  if (releaseDecoderReadBuffer(buf)) return;
  if (readPool.length < READ_POOL_MAX && buf.length <= READ_POOL_MAX_BYTES) readPool.push(buf);
}

/**
 * At most two tailers read (and consume) at once, the others wait their turn in order: one
 * chunk is read while another is decoded, which is all the overlap a single decoding thread can
 * use. A read buffer per tailer of a busy host (100 files: 25 MiB of 256 KiB buffers, most of
 * them new each time) was garbage outside the heap; with eight turns (libuv's four file reads at
 * a time) the chunks that finished reading were consumed back to back, and the export loop's own
 * callbacks (the receiver's answer, each step of a checkpoint write) waited behind them: with 100
 * files of the log benchmark eight turns took 1.37-1.63 CPU-s and 1.51-1.81 s per million lines,
 * four 1.28-1.54 and 1.39-1.66, two 1.05-1.22 and 1.17-1.28, one 1.07-1.10 and 1.19-1.25 (no
 * read overlapping the decoding); peak RSS over idle 70-88, 63-68, 50-57 and 40-43 MiB.
 */
export const READ_TURNS = 2;
let readers = 0;
const readQueue: (() => void)[] = [];

function readTurn(): Promise<void> | undefined {
  if (readers < READ_TURNS) {
    readers++;
    return undefined;
  }
  return new Promise<void>((r) => readQueue.push(r));
}

/** Tailers reading now and waiting for their turn (tests, diagnostics). */
export function readTurns(): { reading: number; waiting: number } {
  return { reading: readers, waiting: readQueue.length };
}

function endReadTurn(): void {
  const next = readQueue.shift();
  if (next)
    next(); // the turn passes on: readers stays the same
  else readers--;
}

export interface TailerStats {
  lines(stream: 'stdout' | 'stderr', lines: number, bytes: number): void;
  drop(reason: DropReason, n?: number): void;
  truncated(): void;
  warn(cause: string, obj: Record<string, unknown>, msg: string): void;
  /** Bytes of log data lost before they could be read (a lower bound), by reason. */
  lost?(reason: 'file_truncated' | 'rotated_away', bytes: number): void;
  /** Debug diagnostics (generation opened, finished, lost), with the file and inode. */
  debug?(obj: Record<string, unknown>, msg: string): void;
}

export interface TailerOptions {
  key: string;
  /** The live log file (already mapped under the agent's view of the Docker root). */
  path: string;
  resource: LogResource;
  sink: TailerSink;
  stats: TailerStats;
  /** Committed position from the checkpoint store. */
  checkpoint?: Checkpoint;
  /** The acknowledged position moved: persist it (called synchronously from an ack). */
  commit?(cp: Checkpoint): void;
  /**
   * Every record handed on is acknowledged now (called synchronously from an ack, after commit):
   * a finished tailer can be retired, even when its last records (a line fragment flushed at the
   * end) were no commit point.
   */
  idle?(): void;
  /** Without a checkpoint: read existing data from the beginning or start at the end. */
  startAt: 'beginning' | 'end';
  maxLineBytes: number;
  chunkBytes: number;
  partialFlushMs: number;
  pollMs: number;
  /** Watch the directory for changes (default true). */
  watch?: boolean;
  /**
   * The live file, opened already (grabLogFile) when the container's start event came: the tailer
   * takes over the descriptor. Without it the tailer opens the file as it starts.
   */
  grabbed?: GrabbedFile;
  now?: () => number;
}

interface MutableIdentity {
  dev: number;
  ino: number;
  fp: string;
  fpLen: number;
  seq: number;
  /** Birth time (ms) of a plain file; 0 when unknown (and for `.gz` generations). */
  btime: number;
}

interface OpenFile {
  /** The open file, or a streamed `.gz` generation read at uncompressed offsets. */
  fh: GenerationHandle;
  id: MutableIdentity;
  /** Offset of the first byte not consumed yet. */
  pos: number;
  size: number;
  /** Discarding an over-long raw line until its newline. */
  skipping: boolean;
  /** A newer generation appeared: read once more to the end before finishing this one. */
  finalRead: boolean;
  readSize: number;
  /** Reached the end once: check the first bytes before reading what was appended since. */
  verifyHead: boolean;
  /** The fingerprint covers all it should (see FP_MAX); until then it grows as the file does. */
  fpDone: boolean;
  mtimeMs: number;
  /** mtime of the stat that last set `size`: the bytes up to size were written by then. */
  sizeMtimeMs: number;
  /** Birth time (0 where the file system does not report it): orders generations grabbed late. */
  btime: number;
}

/**
 * A generation opened synchronously from a file-system notification (see Tailer.grabLive): a
 * plain descriptor behind the GenerationHandle interface (node has no FileHandle from an fd).
 */
class FdGeneration implements GenerationHandle {
  private closed = false;
  constructor(readonly fd: number) {}
  read(
    buf: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }> {
    return new Promise((resolve, reject) =>
      read(this.fd, buf, offset, length, position, (err, n) =>
        err ? reject(err) : resolve({ bytesRead: n }),
      ),
    );
  }
  stat(): Promise<Stats> {
    return new Promise((resolve, reject) =>
      fstat(this.fd, (err, st) => (err ? reject(err) : resolve(st))),
    );
  }
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => close(this.fd, () => resolve()));
  }
}

/** A log file opened (synchronously) before its tailer existed or looked, with its identity. */
export interface GrabbedFile {
  readonly fh: GenerationHandle;
  readonly dev: number;
  readonly ino: number;
}

/**
 * Opens a log file now and keeps it open: once Docker deletes it (`docker run --rm`), the data
 * stays readable through this descriptor. undefined when the file does not exist (yet).
 */
export function grabLogFile(file: string): GrabbedFile | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    return { fh: new FdGeneration(fd), dev: st.dev, ino: st.ino };
  } catch {
    closeSync(fd);
    return undefined;
  }
}

function fingerprint(buf: Buffer): string {
  return createHash('sha1').update(buf).digest('hex').slice(0, 20);
}

/** Scratch for the head checks after each read of a single generation (headStillSame). */
let headScratch = Buffer.alloc(0);
/** The head bytes last found to match a fingerprint: compared as bytes next time (no hash). */
let matchedFp = '';
let matchedHead = Buffer.alloc(0);

/**
 * Whether the generation still begins with the bytes its fingerprint was taken of, read without
 * a trip through the thread pool when the handle has a descriptor: undefined when it cannot tell
 * that way (no descriptor, a read error: the caller reads asynchronously and sees the error).
 * This runs after every chunk read from a lone generation (max-file=1, or not rotated yet): as
 * an asynchronous read it was a second thread-pool round trip per 256 KiB chunk, about a tenth of
 * the wall time of one file of the log benchmark. The head was read the chunk before, so it is
 * in the page cache: a copy of a few KiB, not a disk access that could stall the agent.
 */
function headStillSame(fh: GenerationHandle, fp: string, fpLen: number): boolean | undefined {
  const fd = fh.fd;
  if (fd === undefined) return undefined;
  if (headScratch.length < fpLen) headScratch = Buffer.allocUnsafe(Math.max(fpLen, 4096));
  let n: number;
  try {
    n = readSync(fd, headScratch, 0, fpLen, 0);
  } catch {
    return undefined;
  }
  if (n !== fpLen) return false;
  const head = headScratch.subarray(0, fpLen);
  if (fp === matchedFp && head.equals(matchedHead)) return true;
  if (fingerprint(head) !== fp) return false;
  matchedFp = fp;
  matchedHead = Buffer.from(head);
  return true;
}

let seqCounter = 0;

export class Tailer {
  readonly key: string;
  readonly path: string;
  private readonly opts: TailerOptions;
  private readonly files: OpenFile[] = [];
  private readonly partials: PartialLines;
  private readonly tracker: AckTracker<MutableIdentity>;
  /** observedMs of the records being emitted (one clock read per chunk). */
  private observedMs = 0;
  /** The decoder's result, reused line after line. */
  private readonly decoded = decodedBytes();
  /** The sink's run intake (src/logs/run.ts) while the chunk being consumed may make runs. */
  private runs: RunSink | undefined;
  /** The open run of the chunk being consumed: lines encoded in runSrc[runStart, runEnd). */
  private runSrc: Buffer | undefined;
  private runView: DataView | undefined;
  private runStart = 0;
  private runEnd = 0;
  private runLines = 0;
  /** Generation and end offset of the run's last line (its ack unit). */
  private runId: MutableIdentity | undefined;
  private runOffset = 0;
  /** Header length of the last run line: the room asked for before the next body (lineAt). */
  private lastHeader = headerBytes(100);
  /** Length of the last record lineAt decoded. */
  private lastLen = 256;
  /** Lines and bytes of the chunk being consumed, per stream (reported once per chunk). */
  private outLines = 0;
  private outBytes = 0;
  private errLines = 0;
  private errBytes = 0;
  /** The chunk's observed time as the halves of its nanoseconds (runs write it). */
  private obsLo = 0;
  private obsHi = 0;
  private stopped = false;
  private removed = false;
  private flushAtEof = false;
  private loop: Promise<void> | undefined;
  private waker: (() => void) | undefined;
  private woken = false;
  private watcher: FSWatcher | undefined;
  private unwatchGrabs: (() => void) | undefined;
  private readonly now: () => number;
  /** Set once the container is gone and everything was read. */
  done = false;
  private doneResolve!: () => void;
  readonly finished = new Promise<void>((r) => (this.doneResolve = r));
  private everOpened = false;
  /** Generations already read to their end (dev:ino → fingerprint), never opened again. */
  private readonly finishedGens = new Map<string, { fp: string; fpLen: number }>();
  /**
   * Live files opened the moment a notification named them (oldest first), not yet taken over
   * by discovery: their data stays readable even if Docker deletes them before discovery runs.
   */
  private readonly grabbed: GrabbedFile[] = [];
  /**
   * Generations a listing showed that could not be opened (gone meanwhile), with the size seen:
   * if the next listing does not show them under any name, Docker deleted them unread.
   */
  private readonly vanishing = new Map<string, { file: string; size: number }>();

  constructor(opts: TailerOptions) {
    this.opts = opts;
    this.key = opts.key;
    this.path = opts.path;
    this.now = opts.now ?? Date.now;
    this.partials = new PartialLines({
      maxLineBytes: opts.maxLineBytes,
      flushMs: opts.partialFlushMs,
      emit: (l) => this.emit(l),
      hold: (d) => this.opts.sink.hold?.(d),
      now: this.now,
    });
    this.tracker = new AckTracker<MutableIdentity>(
      (id, offset) =>
        this.opts.commit?.({
          path: this.path,
          dev: id.dev,
          ino: id.ino,
          fp: id.fp,
          fpLen: id.fpLen,
          offset,
          ...(id.btime > 0 ? { btime: id.btime } : {}),
        }),
      () => this.opts.idle?.(),
    );
  }

  /** Records handed on whose acknowledgement has not come yet (tokens outstanding). */
  get unacknowledged(): number {
    return this.tracker.outstanding;
  }

  start(): void {
    if (this.loop) return;
    // Hold the live file from the start: a short-lived container may be removed (and its log file
    // deleted) before the first listing; what it wrote is read through this descriptor.
    const first = this.opts.grabbed ?? grabLogFile(this.path);
    if (first) this.grabbed.push(first);
    if (this.opts.watch !== false) {
      this.unwatchGrabs = watchForGrabs(this.path, (g) => this.acceptGrab(g));
      try {
        const base = path.basename(this.path);
        this.watcher = watch(path.dirname(this.path), { persistent: false }, (ev, name) => {
          if (name && !String(name).startsWith(base)) return;
          // A rotation: open the new generation now, even while an older one is being read, so
          // Docker deleting old generations cannot take data we have not read. The live file is
          // opened right here, synchronously: discovery runs behind reads and checkpoint writes
          // in the thread pool, and with max-file=1 a generation lives only until max-size.
          if (ev === 'rename') {
            if (name === base) this.grabLive();
            this.discoverSoon();
          }
          this.wake();
        });
        this.watcher.on('error', () => {
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch {
        // Directory missing or notifications unsupported: the poll covers it.
      }
    }
    this.loop = this.run().catch((err: unknown) => {
      this.opts.stats.warn(
        `tailer-crash:${this.key}`,
        { err, path: this.path },
        'A log tailer failed; it will be restarted with the container.',
      );
    });
  }

  wake(): void {
    this.woken = true;
    const w = this.waker;
    this.waker = undefined;
    w?.();
  }

  /** The container stopped: once its file is drained, ship pending partial lines. */
  containerStopped(): void {
    this.flushAtEof = true;
    this.wake();
  }

  /** The container was removed: drain what is left, then finish. */
  markRemoved(): void {
    this.removed = true;
    this.flushAtEof = true;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatchGrabs?.();
    this.unwatchGrabs = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.wake();
    await this.loop;
    await this.closeAll();
    // Partial lines not shipped are re-read after a restart: give their bytes back to the bound.
    this.partials.discard();
  }

  /** Bytes of partial lines held. */
  get heldBytes(): number {
    return this.partials.held;
  }

  /** Bytes not read yet, over all open generations. */
  bytesBehind(): number {
    let n = 0;
    for (const f of this.files) n += Math.max(0, f.size - f.pos);
    return n;
  }

  /**
   * When the oldest log data not delivered yet was written (ms since the epoch; undefined: none):
   * the time of the oldest record read and not acknowledged (per read chunk, see AckTracker.mark),
   * or, older still, the mtime of the oldest generation with unread bytes (when they were
   * written at the latest). Read by the oldest-unshipped gauge at scrape time.
   */
  oldestUnshippedMs(): number | undefined {
    let t = this.tracker.oldestMarkedMs();
    const f = this.files.find((x) => x.size > x.pos);
    if (f && (t === undefined || f.sizeMtimeMs < t)) t = f.sizeMtimeMs;
    return t;
  }

  /** For tests: the identities of the open generations. */
  openInodes(): number[] {
    return this.files.map((f) => f.id.ino);
  }

  /** A descriptor the grabber thread opened for our live file (see grabber.ts). */
  private acceptGrab(g: Grab): void {
    const held = (x: { dev: number; ino: number }): boolean => x.dev === g.dev && x.ino === g.ino;
    if (this.stopped || this.files.some((f) => held(f.id)) || this.grabbed.some(held)) {
      closeSync(g.fd);
      return;
    }
    this.keepGrab({ fh: new FdGeneration(g.fd), dev: g.dev, ino: g.ino });
    this.discoverSoon();
    this.wake();
  }

  private keepGrab(g: GrabbedFile): void {
    this.grabbed.push(g);
    // Bounded: a tailer that cannot keep up must not hold descriptors without limit. One let go
    // that Docker already deleted is lost, and counted.
    if (this.grabbed.length > 16) {
      const old = this.grabbed.shift()!;
      void (async () => {
        try {
          const st = await old.fh.stat();
          if (st.nlink === 0 && !this.finishedGens.has(`${old.dev}:${old.ino}`))
            this.lostUnread(this.path, old.ino, st.size);
        } catch {
          // closed meanwhile
        }
        await old.fh.close();
      })();
    }
  }

  /** Opens the live file now (from a notification) unless a generation on its inode is held. */
  private grabLive(): void {
    if (this.stopped || !this.initDone) return;
    const g = grabLogFile(this.path);
    if (!g) return; // deleted (the notification of the move out) or not created yet
    const held = (x: { dev: number; ino: number }): boolean => x.dev === g.dev && x.ino === g.ino;
    if (this.files.some((f) => held(f.id)) || this.grabbed.some(held)) {
      void g.fh.close();
      return;
    }
    this.keepGrab(g);
  }

  private async closeAll(): Promise<void> {
    for (const g of this.grabbed.splice(0)) await g.fh.close();
    const fs = this.files.splice(0);
    await Promise.all(fs.map((f) => f.fh.close().catch(() => undefined)));
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.waker = undefined;
        resolve();
      }, ms);
      this.waker = () => {
        clearTimeout(t);
        resolve();
      };
    }).then(() => {
      this.woken = false;
    });
  }

  private initDone = false;
  /** The next decoded line is the first of a chunk: its time marks the chunk's tokens. */
  private markChunk = false;

  private async run(): Promise<void> {
    await this.init();
    this.initDone = true;
    while (!this.stopped) {
      const wait = this.opts.sink.waitForSpace();
      if (wait) {
        await this.pausedWait(wait);
        continue;
      }
      let progressed: boolean;
      try {
        progressed = await this.step();
      } catch (err) {
        this.opts.stats.warn(
          `tailer-read:${this.key}:${(err as NodeJS.ErrnoException).code ?? 'error'}`,
          { err, path: this.path },
          'Reading a container log file failed; retrying.',
        );
        progressed = false;
      }
      if (this.done) break;
      if (!progressed) {
        this.observedMs = this.now();
        this.partials.flushStale(this.observedMs);
        await this.sleep(this.nextSleepMs());
      }
    }
  }

  /**
   * Paused on a full queue: wakes when there is room, and every poll interval meanwhile to notice
   * stop() and keep bytesBehind() current (the files keep growing while we do not read).
   */
  private async pausedWait(wait: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const poll = new Promise<'poll'>(
      (r) => (timer = setTimeout(() => r('poll'), this.opts.pollMs)),
    );
    const r = await Promise.race([wait.then(() => 'room' as const), poll]);
    clearTimeout(timer);
    if (r === 'room' || this.stopped) return;
    // Generations Docker rotated in meanwhile count too (the poll covers a missing watcher).
    if (this.now() - this.lastDiscoverAt >= this.opts.pollMs) await this.discover();
    const newest = this.files[this.files.length - 1];
    for (const f of this.files) {
      try {
        const st = await f.fh.stat();
        // The live file truncated in place (max-file=1) while we do not read: noticed now, so
        // the loss is counted (with what we knew was unread) and bytes behind stays true.
        let truncated = st.size < f.size || st.size < f.pos;
        if (!truncated && f === newest && f.id.fpLen > 0 && f.pos > 0) {
          const head = Buffer.alloc(f.id.fpLen);
          const r = await f.fh.read(head, 0, head.length, 0);
          truncated = r.bytesRead !== head.length || fingerprint(head) !== f.id.fp;
        }
        if (truncated) this.restartTruncated(f, f.size, st.size);
        else if (st.size > f.size) f.size = st.size;
        f.sizeMtimeMs = st.mtimeMs;
      } catch {
        // closed meanwhile
      }
    }
  }

  private nextSleepMs(): number {
    const d = this.partials.nextDeadline();
    if (d === undefined) return this.opts.pollMs;
    return Math.min(this.opts.pollMs, Math.max(1, d - this.now()));
  }

  // ---- file discovery ----

  /**
   * Existing generations, oldest first: name.N … name.1, name. With gz (at start only: a restart
   * after Docker compressed generations the agent had not read), `name.N.gz` too, unless the
   * plain `name.N` still exists (Docker removes it only once the `.gz` is complete); their size
   * is the uncompressed one.
   */
  private async listGenerations(
    gz = false,
  ): Promise<
    { file: string; dev: number; ino: number; size: number; gz: boolean; btime: number }[]
  > {
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const gens: { n: number; file: string; gz: boolean }[] = [];
    for (const name of names) {
      if (name === base) gens.push({ n: 0, file: this.path, gz: false });
      else if (name.startsWith(`${base}.`) && /^\d+$/.test(name.slice(base.length + 1)))
        gens.push({
          n: Number(name.slice(base.length + 1)),
          file: path.join(dir, name),
          gz: false,
        });
      else if (
        gz &&
        name.startsWith(`${base}.`) &&
        /^\d+\.gz$/.test(name.slice(base.length + 1)) &&
        !names.includes(name.slice(0, -3))
      )
        gens.push({
          n: Number(name.slice(base.length + 1, -3)),
          file: path.join(dir, name),
          gz: true,
        });
    }
    // Stat newest first: rotation moves files towards older names, the same direction as this
    // scan, so a file moving meanwhile is seen twice (deduplicated) but never missed.
    gens.sort((a, b) => a.n - b.n);
    const scanned: {
      file: string;
      dev: number;
      ino: number;
      size: number;
      gz: boolean;
      btime: number;
    }[] = [];
    for (const g of gens) {
      try {
        const st = await stat(g.file);
        const size = g.gz ? await uncompressedSize(g.file, st.size) : st.size;
        const btime = g.gz ? 0 : st.birthtimeMs || 0;
        scanned.push({ file: g.file, dev: st.dev, ino: st.ino, size, gz: g.gz, btime });
      } catch {
        // rotated away meanwhile
      }
    }
    scanned.reverse();
    const seen = new Set<string>();
    const out: typeof scanned = [];
    for (const g of scanned) {
      const k = `${g.dev}:${g.ino}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(g);
    }
    return out;
  }

  /**
   * Opens a generation; undefined when it is gone or (expectIno given) the name now refers to
   * another file because Docker rotated between our listing and the open.
   */
  private async openGeneration(
    file: string,
    pos: number | 'end',
    expectIno?: number,
    given?: GenerationHandle,
  ): Promise<OpenFile | undefined> {
    let fh: GenerationHandle;
    try {
      fh = given ?? (file.endsWith('.gz') ? await GzGeneration.open(file) : await open(file, 'r'));
    } catch {
      return undefined;
    }
    const st = await fh.stat();
    if (expectIno !== undefined && st.ino !== expectIno) {
      await fh.close();
      return undefined;
    }
    const headBuf = Buffer.alloc(Math.min(FP_MAX, st.size));
    const got = headBuf.length > 0 ? (await fh.read(headBuf, 0, headBuf.length, 0)).bytesRead : 0;
    const ext = fpExtent(headBuf.subarray(0, got));
    const head = headBuf.subarray(0, ext.len);
    let start = pos === 'end' ? st.size : pos;
    if (pos === 'end' && st.size > 0) {
      // Start after the last complete line.
      const tailLen = Math.min(st.size, 256 * 1024);
      const t = Buffer.alloc(tailLen);
      await fh.read(t, 0, tailLen, st.size - tailLen);
      const nl = t.lastIndexOf(10);
      start = nl < 0 ? st.size - tailLen : st.size - tailLen + nl + 1;
    }
    this.everOpened = true;
    return {
      fh,
      id: {
        dev: st.dev,
        ino: st.ino,
        fp: fingerprint(head),
        fpLen: head.length,
        seq: ++seqCounter,
        btime: file.endsWith('.gz') ? 0 : st.birthtimeMs || 0,
      },
      pos: start,
      size: st.size,
      skipping: false,
      finalRead: false,
      readSize: this.opts.chunkBytes,
      verifyHead: false,
      fpDone: ext.done,
      mtimeMs: st.mtimeMs,
      sizeMtimeMs: st.mtimeMs,
      btime: st.birthtimeMs,
    };
  }

  private async init(): Promise<void> {
    const gens = await this.listGenerations(true);
    const cp = this.opts.checkpoint;
    // Grabbed at start (or at the container's start event) and gone from the listing: the
    // container was removed meanwhile (`docker run --rm`); its data is read through the descriptor.
    const listed = (g: GrabbedFile): boolean =>
      gens.some((x) => x.dev === g.dev && x.ino === g.ino);
    const orphans = this.grabbed.filter((g) => !listed(g));
    for (const g of orphans) this.grabbed.splice(this.grabbed.indexOf(g), 1);
    if (gens.length === 0) {
      for (const g of orphans) {
        let pos: number | 'end' = !cp && this.opts.startAt === 'end' ? 'end' : 0;
        if (cp && cp.dev === g.dev && cp.ino === g.ino && (await this.headMatches(g.fh, cp)))
          pos = cp.offset;
        const f = await this.openGeneration(this.path, pos, g.ino, g.fh);
        if (f) this.addFile(f);
      }
      return;
    }
    // Deleted between the grab and the listing (a rotation): older than every file listed.
    for (const g of orphans) {
      const f =
        !cp && this.opts.startAt !== 'end'
          ? await this.openGeneration(this.path, 0, g.ino, g.fh)
          : (await g.fh.close(), undefined);
      if (f) this.addFile(f);
    }
    const take = (ino: number): GenerationHandle | undefined => {
      const i = this.grabbed.findIndex((g) => g.ino === ino);
      return i >= 0 ? this.grabbed.splice(i, 1)[0]!.fh : undefined;
    };
    let from = 0;
    let firstPos: number | 'end' = 0;
    if (cp) {
      let found = -1;
      /** The checkpointed inode is the only file and holds other content: truncated in place. */
      let rewritten = false;
      /**
       * The checkpointed file itself (same inode and birth time) with other first bytes: truncated
       * (or rewritten) in place, then maybe rotated. Files older than it were read before the
       * checkpoint; it is read again from its start.
       */
      let truncatedAt = -1;
      for (let i = gens.length - 1; i >= 0; i--) {
        const g = gens[i]!;
        if (g.dev !== cp.dev || g.ino !== cp.ino) continue;
        const births = cp.btime !== undefined && cp.btime > 0 && g.btime > 0;
        const sameBirth = births && cp.btime === g.btime;
        // Same inode: the same file only if its first bytes still match. Otherwise the inode was
        // reused by a newer generation after the checkpointed file was deleted (common: Docker
        // deletes the oldest generation and creates the live file right after), or the file was
        // rewritten: every file present is then newer than the checkpoint.
        try {
          const fh = await open(g.file, 'r');
          try {
            const head = Buffer.alloc(Math.min(cp.fpLen, g.size));
            if (head.length > 0) await fh.read(head, 0, head.length, 0);
            if (head.length === cp.fpLen && fingerprint(head) === cp.fp) found = i;
            else if (sameBirth && !g.gz) truncatedAt = i;
            // Docker with max-file=1 truncates the live file in place (same inode) instead of
            // rotating it: with no other generation, that is what happened.
            // (Not when it was born later: a new file on the freed inode.)
            else rewritten = !births && gens.length === 1 && !g.gz && g.file === this.path;
          } finally {
            await fh.close();
          }
        } catch {
          // gone
        }
        break;
      }
      // Every older plain generation born before the checkpointed file, or the inode was reused
      // by a newer file born in the same clock tick: then the older files are newer than the
      // checkpoint and must be read (the checkpoint-miss handling below).
      if (
        truncatedAt >= 0 &&
        !gens.slice(0, truncatedAt).every((g) => g.gz || (g.btime > 0 && g.btime < (cp.btime ?? 0)))
      )
        truncatedAt = -1;
      // the checkpointed inode itself, with its birth time, beats a .gz whose first bytes match
      if (found < 0 && truncatedAt < 0) found = await this.findCompressed(gens, cp);
      if (found >= 0) {
        from = found;
        const g = gens[found]!;
        if (g.size < cp.offset) {
          this.opts.stats.drop('file_truncated');
          firstPos = 0;
        } else firstPos = cp.offset;
      } else if (truncatedAt >= 0) {
        from = truncatedAt;
        this.opts.stats.drop('file_truncated');
        this.opts.stats.warn(
          `truncated:${this.key}`,
          { path: gens[truncatedAt]!.file, checkpointOffset: cp.offset },
          'A container log file was truncated in place (then maybe rotated) after the checkpoint was written; what it held after the checkpoint and was not read is lost (harbormaster_log_drops_total{reason="file_truncated"}); reading it from its start, and the newer files after it.',
        );
      } else if (rewritten) {
        this.opts.stats.drop('file_truncated');
        this.opts.stats.warn(
          `truncated:${this.key}`,
          { path: this.path, checkpointOffset: cp.offset },
          'A container log file was truncated in place while the agent was not reading it (max-file=1); what it held after the checkpoint is lost (harbormaster_log_drops_total{reason="file_truncated"}); reading it from its start.',
        );
      } else if (gens.length > 0) {
        // The checkpointed file is gone (Docker rotated it away while the agent was down or
        // behind, or it was replaced): every file present is newer than it, and what it held
        // after the checkpoint is lost. Counted as one file rotated away.
        this.opts.stats.drop('rotated_away');
        this.opts.stats.warn(
          `checkpoint-miss:${this.key}`,
          { path: this.path, checkpointIno: cp.ino, checkpointOffset: cp.offset },
          'The log file of a checkpoint no longer exists (Docker deleted it before it was read to its end; counted as harbormaster_log_drops_total{reason="rotated_away"}); reading the remaining files from their start.',
        );
      }
    } else if (this.opts.startAt === 'end') {
      from = Math.max(0, gens.length - 1);
      firstPos = 'end';
    }
    for (let i = from; i < gens.length; i++) {
      let f = await this.openGeneration(
        gens[i]!.file,
        i === from ? firstPos : 0,
        gens[i]!.ino,
        gens[i]!.gz ? undefined : take(gens[i]!.ino),
      );
      if (!f && i === from && firstPos !== 0) {
        // The checkpointed file moved (rotated) meanwhile: find it again by inode.
        const again = (await this.listGenerations()).find((g) => g.ino === gens[i]!.ino);
        if (again) f = await this.openGeneration(again.file, firstPos, again.ino);
      } else if (!f) {
        const again = (await this.listGenerations()).find((g) => g.ino === gens[i]!.ino);
        if (again) f = await this.openGeneration(again.file, 0, again.ino);
      }
      if (f) this.addFile(f);
    }
    // Grabbed files of listed generations not used here (older than the checkpoint): not needed.
    // Others were grabbed during the listing: discovery takes them.
    for (const g of this.grabbed.slice()) {
      if (!listed(g)) continue;
      this.grabbed.splice(this.grabbed.indexOf(g), 1);
      await g.fh.close();
    }
  }

  /** The first bytes of an open file have the checkpoint's fingerprint. */
  private async headMatches(fh: GenerationHandle, cp: Checkpoint): Promise<boolean> {
    const head = Buffer.alloc(cp.fpLen);
    const r = head.length > 0 ? await fh.read(head, 0, head.length, 0) : { bytesRead: 0 };
    return r.bytesRead === head.length && fingerprint(head) === cp.fp;
  }

  /**
   * The checkpointed file was compressed while the agent was away (`compress=true`): the `.gz`
   * generation whose uncompressed first bytes have the checkpoint's fingerprint, newest first;
   * -1 when none has.
   */
  private async findCompressed(
    gens: readonly { file: string; gz: boolean; size: number }[],
    cp: Checkpoint,
  ): Promise<number> {
    for (let i = gens.length - 1; i >= 0; i--) {
      const g = gens[i]!;
      if (!g.gz || g.size < cp.fpLen) continue;
      let h: GzGeneration | undefined;
      try {
        h = await GzGeneration.open(g.file);
        const head = Buffer.alloc(cp.fpLen);
        const r = head.length > 0 ? await h.read(head, 0, head.length, 0) : { bytesRead: 0 };
        if (r.bytesRead === head.length && fingerprint(head) === cp.fp) return i;
      } catch {
        // gone or not gzip
      } finally {
        await h?.close();
      }
    }
    return -1;
  }

  private addFile(f: OpenFile): void {
    for (const old of this.files) old.finalRead = true;
    this.files.push(f);
  }

  private discovering: Promise<boolean> | undefined;
  private discoverAgain = false;
  private lastDiscoverAt = 0;

  private discoverSoon(): void {
    if (this.stopped || !this.initDone) return;
    void this.discover();
  }

  /** Serialized: concurrent callers share a run (and one more run follows if asked meanwhile). */
  private discover(): Promise<boolean> {
    if (this.discovering) {
      this.discoverAgain = true;
      return this.discovering;
    }
    this.discovering = (async () => {
      let added = false;
      do {
        this.discoverAgain = false;
        this.lastDiscoverAt = this.now();
        try {
          if (await this.discoverOnce()) added = true;
        } catch {
          // listing failed: the poll retries
        }
      } while (this.discoverAgain && !this.stopped);
      return added;
    })().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  /** Looks for generations newer than the newest one open. Returns true when one was added. */
  private async discoverOnce(): Promise<boolean> {
    const newest = this.files[this.files.length - 1];
    let st;
    try {
      st = await stat(this.path);
    } catch {
      // No live file right now (between Docker's unlink and create): what was grabbed still counts.
      if (this.grabbed.length === 0 && this.vanishing.size === 0) return false;
    }
    if (
      newest &&
      st &&
      st.ino === newest.id.ino &&
      st.dev === newest.id.dev &&
      this.grabbed.length === 0 &&
      this.vanishing.size === 0
    )
      return false;
    const gens = await this.listGenerations();
    const listed = (x: { dev: number; ino: number }): boolean =>
      gens.some((g) => g.dev === x.dev && g.ino === x.ino);
    const held = (x: { dev: number; ino: number }): boolean =>
      this.files.some((f) => f.id.dev === x.dev && f.id.ino === x.ino) ||
      this.grabbed.some((g) => g.dev === x.dev && g.ino === x.ino);
    // Seen in a listing, gone before it could be opened, and under no name now: Docker deleted it
    // unread. Its bytes as last seen are lost (a lower bound: it may have grown since).
    for (const [k, v] of this.vanishing) {
      const [dev, ino] = k.split(':').map(Number) as [number, number];
      if (listed({ dev, ino }) || held({ dev, ino })) continue;
      this.lostUnread(v.file, ino, v.size);
    }
    this.vanishing.clear();
    let added = false;
    // Live files grabbed on a notification that no listing shows any more: Docker deleted them
    // before discovery ran. They are older than every generation listed: read them first.
    for (const g of this.grabbed.slice()) {
      if (listed(g)) continue;
      this.grabbed.splice(this.grabbed.indexOf(g), 1);
      const f = await this.openGeneration(this.path, 0, g.ino, g.fh);
      if (f && (await this.adopt(f))) added = true;
    }
    let idx = -1;
    if (newest) {
      for (let i = 0; i < gens.length; i++) {
        if (gens[i]!.ino === newest.id.ino && gens[i]!.dev === newest.id.dev) idx = i;
      }
    }
    // Grabbed descriptors of generations no newer than the newest open one: discovery had them.
    for (let i = 0; i <= idx; i++) {
      const gi = this.grabbed.findIndex((x) => x.dev === gens[i]!.dev && x.ino === gens[i]!.ino);
      if (gi >= 0) void this.grabbed.splice(gi, 1)[0]!.fh.close();
    }
    for (let i = idx + 1; i < gens.length; i++) {
      const g = gens[i]!;
      if (this.files.some((f) => f.id.ino === g.ino && f.id.dev === g.dev)) continue;
      const gi = this.grabbed.findIndex((x) => x.dev === g.dev && x.ino === g.ino);
      const handle = gi >= 0 ? this.grabbed.splice(gi, 1)[0]!.fh : undefined;
      const f = await this.openGeneration(g.file, 0, g.ino, handle);
      if (!f) {
        // Rotated (or deleted) since the listing: list again rather than skip a generation.
        this.vanishing.set(`${g.dev}:${g.ino}`, { file: g.file, size: g.size });
        this.discoverAgain = true;
        break;
      }
      if (await this.adopt(f)) added = true;
    }
    return added;
  }

  /** Adds a newly opened generation unless it is one already read or held; false then. */
  private async adopt(f: OpenFile): Promise<boolean> {
    const fin = this.finishedGens.get(`${f.id.dev}:${f.id.ino}`);
    if (fin && fin.fpLen > 0 && f.id.fpLen >= fin.fpLen) {
      const head = Buffer.alloc(fin.fpLen);
      if (head.length > 0) await f.fh.read(head, 0, head.length, 0);
      if (fingerprint(head) === fin.fp) {
        await f.fh.close();
        return false;
      }
    }
    if (this.files.some((x) => x.id.ino === f.id.ino && x.id.dev === f.id.dev)) {
      await f.fh.close();
      return false;
    }
    this.opts.stats.debug?.(
      { path: this.path, ino: f.id.ino, size: f.size, open: this.files.length },
      'Log generation opened.',
    );
    // A descriptor grabbed on a notification may reach us after discovery opened newer files:
    // it goes before every file born after it (the live file always stays last).
    const at = f.btime > 0 ? this.files.findIndex((x) => x.btime > f.btime) : -1;
    if (at < 0) this.addFile(f);
    else {
      for (let i = 0; i < at; i++) this.files[i]!.finalRead = true;
      this.files.splice(at, 0, f);
      f.finalRead = true;
    }
    return true;
  }

  /** A generation Docker deleted before it was opened: counted and logged with the file named. */
  private lostUnread(file: string, ino: number, bytes: number): void {
    this.opts.stats.drop('rotated_away');
    if (bytes > 0) this.opts.stats.lost?.('rotated_away', bytes);
    this.opts.stats.warn(
      `rotated-unread:${this.key}`,
      { path: file, ino, bytes },
      'Docker deleted a log file before the agent could open it (harbormaster_log_drops_total{reason="rotated_away"}, its size in harbormaster_log_lost_bytes_total); the agent is not keeping up with this container\'s log rotation.',
    );
  }

  // ---- reading ----

  private async step(): Promise<boolean> {
    const cur = this.files[0];
    if (!cur) {
      if (await this.discover()) return true;
      if (this.removed) {
        if (!this.everOpened) this.opts.stats.drop('file_removed_unread');
        this.finish();
      }
      return false;
    }
    if (this.now() - this.lastDiscoverAt >= this.opts.pollMs) await this.discover();
    const turn = readTurn();
    if (turn) await turn;
    const readSize = cur.readSize;
    const buf = acquireReadBuffer(readSize);
    let progressed: boolean | undefined;
    try {
      progressed = await this.readStep(cur, buf, readSize);
    } finally {
      releaseReadBuffer(buf);
      endReadTurn();
    }
    // At the end of the generation: its checks (stat, a listing) wait without holding a turn, so
    // that tailers with data to read go on meanwhile.
    return progressed ?? (await this.atEnd(cur));
  }

  /** Reads and consumes the next chunk; undefined: nothing was read (at the end). */
  private async readStep(
    cur: OpenFile,
    buf: Buffer,
    readSize: number,
  ): Promise<boolean | undefined> {
    const { bytesRead } = await cur.fh.read(buf, 0, readSize, cur.pos);
    if (bytesRead > 0 && (cur.verifyHead || this.files.length === 1)) {
      // The live file may be truncated in place and rewritten (max-file=1) while we read it:
      // check its first bytes after the read; on a change the chunk is not trusted.
      cur.verifyHead = false;
      if (cur.id.fpLen > 0 && cur.pos > 0) {
        let same = headStillSame(cur.fh, cur.id.fp, cur.id.fpLen);
        if (same === undefined) {
          const head = Buffer.alloc(cur.id.fpLen);
          const r = await cur.fh.read(head, 0, head.length, 0);
          same = r.bytesRead === head.length && fingerprint(head) === cur.id.fp;
        }
        if (!same) {
          // Lost: at least what we knew of plus the chunk just read. Its size now is unknown: 0
          // until the next read or stat (not the old one, which the next look at the file,
          // paused on a full queue, would take for a second truncation).
          this.restartTruncated(cur, Math.max(cur.size, cur.pos + bytesRead), 0);
          return true;
        }
      }
    }
    if (bytesRead > 0) {
      // consume() is synchronous and copies what it keeps: buf is free again when it returns.
      const chunk = buf.subarray(0, bytesRead);
      if (cur.pos + bytesRead > cur.size) cur.size = cur.pos + bytesRead;
      this.consume(cur, chunk, bytesRead === readSize);
      return true;
    }
    return undefined;
  }

  /** Nothing more was read from this generation: has it grown, been truncated, rotated, removed? */
  private async atEnd(cur: OpenFile): Promise<boolean> {
    const st = await cur.fh.stat();
    const known = cur.size;
    cur.size = st.size;
    cur.sizeMtimeMs = st.mtimeMs;
    if (st.size < cur.pos) {
      this.restartTruncated(cur, known, st.size);
      return true;
    }
    cur.verifyHead = true;
    if (st.size > cur.pos) return true;
    if (st.mtimeMs !== cur.mtimeMs) {
      // Modified without growing: rewritten to the same length after a truncation?
      cur.mtimeMs = st.mtimeMs;
      if (cur.id.fpLen > 0 && cur.pos > 0) {
        const head = Buffer.alloc(cur.id.fpLen);
        const r = await cur.fh.read(head, 0, head.length, 0);
        if (r.bytesRead !== head.length || fingerprint(head) !== cur.id.fp) {
          this.restartTruncated(cur, cur.size, st.size);
          return true;
        }
      }
    }
    if (this.files.length > 1) {
      if (cur.finalRead) {
        cur.finalRead = false;
        return true;
      }
      this.finishGeneration(cur);
      return true;
    }
    if (await this.discover()) return true;
    if (this.flushAtEof) {
      this.observedMs = this.now();
      this.partials.flushAll();
      if (!this.removed) this.flushAtEof = false;
    }
    if (this.removed && st.nlink === 0) {
      this.finishGeneration(cur);
      this.finish();
    }
    return false;
  }

  /**
   * Truncated in place (or rewritten): whatever we had not read is lost; start again at 0. The
   * bytes lost are at least those we knew of and had not read (knownSize: the size seen before
   * the truncation was noticed). sizeNow becomes the file's known size: what was just seen, or 0
   * when nothing was (never the size before the truncation, or the next look at the file would
   * count the same truncation again).
   */
  private restartTruncated(cur: OpenFile, knownSize: number, sizeNow: number): void {
    this.opts.stats.drop('file_truncated');
    const lost = Math.max(0, knownSize - cur.pos);
    if (lost > 0) this.opts.stats.lost?.('file_truncated', lost);
    this.opts.stats.warn(
      `truncated:${this.key}`,
      { path: this.path },
      'A container log file was truncated; reading it again from its start.',
    );
    this.observedMs = this.now();
    this.partials.flushAll();
    cur.pos = 0;
    cur.size = sizeNow;
    cur.skipping = false;
    cur.verifyHead = false;
    cur.readSize = this.opts.chunkBytes;
    // A new identity: positions in the old content must not be confused with the new one.
    cur.id = { ...cur.id, fp: fingerprint(Buffer.alloc(0)), fpLen: 0, seq: ++seqCounter };
    cur.fpDone = false;
  }

  private finishGeneration(cur: OpenFile): void {
    if (cur.pos < cur.size && !cur.skipping) this.opts.stats.drop('malformed_record');
    this.opts.stats.debug?.(
      { path: this.path, ino: cur.id.ino, offset: cur.pos, size: cur.size },
      'Log generation read to its end and closed.',
    );
    this.files.shift();
    this.finishedGens.set(`${cur.id.dev}:${cur.id.ino}`, { fp: cur.id.fp, fpLen: cur.id.fpLen });
    if (this.finishedGens.size > 32) {
      const first = this.finishedGens.keys().next().value;
      if (first !== undefined) this.finishedGens.delete(first);
    }
    void cur.fh.close().catch(() => undefined);
  }

  private finish(): void {
    this.observedMs = this.now();
    this.partials.flushAll();
    this.done = true;
    this.doneResolve();
  }

  private consume(cur: OpenFile, chunk: Buffer, full: boolean): void {
    const base = cur.pos;
    let i = 0;
    if (!cur.fpDone && base === 0) {
      const ext = fpExtent(chunk.subarray(0, Math.min(FP_MAX, chunk.length)));
      if (ext.len > cur.id.fpLen) {
        cur.id.fp = fingerprint(chunk.subarray(0, ext.len));
        cur.id.fpLen = ext.len;
      }
      cur.fpDone = ext.done;
    }
    if (cur.skipping) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        cur.pos += chunk.length;
        return;
      }
      i = nl + 1;
      cur.skipping = false;
      // The rest of the over-long line needs no delivery: acknowledged at once.
      this.tracker.skip(cur.id, base + i, !this.partials.anyPending);
    }
    this.observedMs = this.now();
    this.markChunk = true;
    // Runs for this chunk only while the sink takes them (a reload may add a stage that must see
    // every record): otherwise no room around bodies, no copies out of the slab.
    const rs = this.opts.sink.runs;
    this.runs = rs !== undefined && (rs.active?.() ?? true) ? rs : undefined;
    // The redaction literals' pairs are looked up while bodies are copied (run lines only).
    this.decoded.pairs = this.runs?.literalPairs?.();
    if (this.runs !== undefined) {
      const o = observedHalves(this.observedMs);
      this.obsLo = o.lo;
      this.obsHi = o.hi;
    }
    let lines = 0;
    const runs = this.runs !== undefined;
    for (;;) {
      if (runs) {
        const e = this.lineAt(cur, chunk, i, base);
        if (e >= 0) {
          lines++;
          i = e + 1;
          continue;
        }
      }
      const nl = chunk.indexOf(10, i);
      if (nl < 0) break;
      this.line(cur, chunk, i, nl, base + nl + 1);
      lines++;
      i = nl + 1;
    }
    // A run never outlives its chunk (nothing else touches the tracker while one is open).
    this.closeRun();
    this.countLines();
    if (lines === 0 && full) {
      // One raw line longer than the read size.
      const maxRaw = this.opts.maxLineBytes * 2 + 65536;
      if (cur.readSize * 2 <= maxRaw) {
        cur.readSize *= 2;
        return;
      }
      this.opts.stats.drop('oversized_raw_line');
      cur.skipping = true;
      cur.pos += chunk.length;
      cur.readSize = this.opts.chunkBytes;
      return;
    }
    if (lines > 0) cur.readSize = this.opts.chunkBytes;
    cur.pos = base + i;
  }

  private line(cur: OpenFile, chunk: Buffer, s: number, e: number, endOffset: number): void {
    const d = this.decoded;
    const runs = this.runs;
    // With runs: room for a run line's framing around the body (run.ts), sized for the body of
    // Docker's usual layout: 70 bytes of the record are `{"log":"`, the `\n` escape and the
    // stream and time keys with a nanosecond time. Another length moves the body (toRun).
    const reserve = runs === undefined ? 0 : headerBytes(Math.max(0, e - s - 70));
    if (!decodeJsonFileLineInto(chunk, s, e, d, reserve, runs === undefined ? 0 : TRAILER_BYTES)) {
      this.closeRun();
      this.opts.stats.drop('malformed_record');
      this.tracker.skip(cur.id, endOffset, !this.partials.anyPending);
      return;
    }
    this.decodedLine(cur, s, e, endOffset, reserve);
  }

  /**
   * With runs: the next line from s, its end found by the decoder (no indexOf per line). The room
   * before the body is sized like the last line's header (lines of a container are alike; another
   * length moves the body). Returns the end of the line (its newline), or -1 when the decoder did
   * not decide (not Docker's usual layout, not whole in the chunk, longer than a short record): the
   * caller then finds the newline and decodes with the end.
   */
  private lineAt(cur: OpenFile, chunk: Buffer, s: number, base: number): number {
    const d = this.decoded;
    const reserve = this.lastHeader;
    // Look for a record up to twice as long as the last one found this way: a long record (a 16
    // KiB fragment, say) costs a short scan before the newline is searched for.
    if (!decodeJsonFileLineInto(chunk, s, -1, d, reserve, TRAILER_BYTES, this.lastLen * 2 + 128))
      return -1;
    const e = d.recordEnd;
    this.lastLen = e - s;
    this.decodedLine(cur, s, e, base + e + 1, reserve);
    return e;
  }

  /** A line decoded into this.decoded (raw record chunk[s, e)): a run's line, a record or a fragment. */
  private decodedLine(
    cur: OpenFile,
    s: number,
    e: number,
    endOffset: number,
    reserve: number,
  ): void {
    const d = this.decoded;
    const runs = this.runs;
    // Counted per chunk (consume reports them once): one call instead of one per line.
    if (d.stream === 'stdout') {
      this.outLines++;
      this.outBytes += e - s + 1;
    } else {
      this.errLines++;
      this.errBytes += e - s + 1;
    }
    if (this.markChunk) {
      // once per chunk: the age of what is not delivered yet (oldestUnshippedMs)
      this.markChunk = false;
      this.tracker.mark(d.timeSec * 1000 + d.timeNanos / 1e6);
    }
    const other = d.stream === 'stdout' ? 'stderr' : 'stdout';
    // (Mostly no line is being reassembled: one check instead of one per stream.)
    const anyPending = this.partials.anyPending;
    if (
      runs !== undefined &&
      d.framed &&
      d.complete &&
      !anyPending &&
      d.attrs === undefined &&
      d.end - d.start <= this.opts.maxLineBytes &&
      runs.passes(d.src, d.start, d.end, d.pairs, d.pairHits)
    ) {
      this.toRun(cur, reserve, endOffset, runs);
      return;
    }
    this.closeRun();
    if (d.framed) {
      // A record or a fragment keeps its body: copied out, so that the slab, whose other lines
      // are runs, can be reused once they are acknowledged (jsonfile.ts).
      const n = d.end - d.start;
      const copy = n === 0 ? EMPTY_BODY : Buffer.allocUnsafe(n);
      d.src.copy(copy, 0, d.start, d.end);
      d.src = copy;
      d.start = 0;
      d.end = n;
    }
    if (d.complete && !(anyPending && this.partials.isPending(d.stream))) {
      // A whole line (the common case): the record is born here, its body the decoder's range.
      // A restart point only where no line of either stream is being reassembled: restarting in
      // the middle of one would read the rest of a delivered line as a line of its own.
      const point = !(anyPending && this.partials.isPending(other));
      const seq = this.tracker.nextSeq(cur.id, endOffset, point);
      let end = d.end;
      let attributes: Record<string, AttrValue> | undefined = d.attrs;
      if (end - d.start > this.opts.maxLineBytes) {
        end = utf8CutEnd(d.src, d.start, end, this.opts.maxLineBytes);
        attributes = { ...attributes, [TRUNCATED_ATTR]: true };
        this.opts.stats.truncated();
      }
      this.opts.sink.push(
        newRecordFromBytes(
          this.opts.resource,
          d.stream,
          d.src,
          d.start,
          end,
          d.timeSec,
          d.timeNanos,
          this.observedMs,
          this.tracker as AckTracker<unknown>,
          seq,
          attributes,
        ),
      );
      return;
    }
    // A fragment of a longer line, or the end of one: partial-line reassembly.
    const point = d.complete && !this.partials.isPending(other);
    this.partials.push(
      d.stream,
      d.src.subarray(d.start, d.end),
      d.complete,
      d.timeSec,
      d.timeNanos,
      d.attrs,
      this.tracker.next(cur.id, endOffset, point),
      undefined,
    );
  }

  /**
   * The decoded whole line joins the open run, encoded where the decoder put its body (`reserve`
   * bytes of room before it, TRAILER_BYTES after). A run is one slab range: a line in another slab
   * (the decoder started a new one) or past the sink's limits starts the next run.
   */
  private toRun(cur: OpenFile, reserve: number, endOffset: number, runs: RunSink): void {
    const d = this.decoded;
    const src = d.src;
    const bl = d.end - d.start;
    const h = headerBytes(bl);
    this.lastHeader = h;
    const at = d.start - reserve;
    const recEnd = at + h + bl + TRAILER_BYTES;
    if (h !== reserve) {
      // The body is not as long as the room was sized for (other escapes, a shorter time, no
      // final newline): move it to just after its header (the slab has room, see the decoder).
      src.copyWithin(at + h, d.start, d.end);
      slabEndAt(src, recEnd);
    }
    if (
      this.runLines > 0 &&
      (src !== this.runSrc ||
        at !== this.runEnd ||
        this.runLines >= runs.maxLines ||
        recEnd - this.runStart > runs.maxBytes)
    )
      this.closeRun();
    if (this.runLines === 0) {
      if (src !== this.runSrc) {
        this.runSrc = src;
        this.runView = new DataView(src.buffer, src.byteOffset, src.length);
      }
      this.runStart = at;
      this.runId = cur.id;
      // The slab is reused only once this run is acknowledged (jsonfile.ts).
      holdSlabRun(src);
    }
    this.runEnd = frameLine(
      src,
      this.runView!,
      at,
      bl,
      d.stream,
      d.timeSec,
      d.timeNanos,
      this.obsLo,
      this.obsHi,
    );
    this.runLines++;
    this.runOffset = endOffset;
  }

  /** Reports the lines and bytes counted since the last report. */
  private countLines(): void {
    if (this.outLines > 0) this.opts.stats.lines('stdout', this.outLines, this.outBytes);
    if (this.errLines > 0) this.opts.stats.lines('stderr', this.errLines, this.errBytes);
    this.outLines = this.outBytes = this.errLines = this.errBytes = 0;
  }

  /** Hands the open run on, with its ack unit: the end of its last line, a commit point. */
  private closeRun(): void {
    if (this.runLines === 0) return;
    const seq = this.tracker.nextSeq(this.runId!, this.runOffset, true);
    this.runs!.push(
      new LineRun(
        this.opts.resource,
        this.runSrc!,
        this.runStart,
        this.runEnd,
        this.runLines,
        this.tracker as AckTracker<unknown>,
        seq,
      ),
    );
    this.runLines = 0;
    this.runId = undefined;
    // (an idle tailer keeps no slab alive)
    this.runSrc = undefined;
    this.runView = undefined;
  }

  /** A line partial-line reassembly completed (joined, cut, or flushed). */
  private emit(l: CompletedLine): void {
    let attributes: Record<string, AttrValue> | undefined = l.attrs;
    if (l.truncated) {
      attributes = { ...attributes, [TRUNCATED_ATTR]: true };
      this.opts.stats.truncated();
    }
    this.opts.sink.push(
      newRecord(
        this.opts.resource,
        l.stream,
        l.body,
        l.timeSec,
        l.timeNanos,
        this.observedMs,
        l.ack,
        attributes,
      ),
    );
  }
}
