// The decode thread: json-file tailers read, decode and encode on the second core.
//
// With runs of encoded lines (src/logs/run.ts) most of a line's CPU is reading the chunk, decoding
// the json-file record and writing its OTLP framing; the main thread's own share is the queue,
// the request and the acknowledgements. A tailer whose next chunk may make runs asks this thread
// instead of reading itself (Tailer.readStep): the worker (decode-worker.ts) reads the chunk from
// the tailer's descriptor into a shared read buffer and turns its lines into runs in slabs of
// shared memory, as the tailer would (the same decoder, framing and byte checks), until the first
// line that is not a run line (a fragment, a line a stage would change, a malformed record, an
// unusual layout). The tailer then makes the runs' acks and goes on from that line itself, with
// the same chunk: the thread never decides anything about a line but its bytes.
//
// Slabs belong to the worker: it holds a slab for each run it made and reuses it once the main
// thread released every one of them (jsonfile.ts's slab accounting, run there); released runs are
// reported back in one message per acknowledged batch. Read buffers belong to the main thread
// (a pool of shared buffers, named by id). Nothing is copied between the threads but numbers.
//
// Without worker threads (or if the worker fails) tailers read and decode on the main thread, as
// they always did; a failure is reported once and reads go on.
import { Worker } from 'node:worker_threads';
import { setForeignSlabRelease } from './jsonfile.js';

/** The byte checks of a container's processing (processor.ts passesBytes), as data. */
export interface ByteCheckSpec {
  /** Parser `auto`: a body that may be JSON or logfmt is not a run line. */
  readonly auto: boolean;
  /** Redaction literals (ASCII, any case): a body that contains one is not a run line. */
  readonly literals: readonly string[];
}

/** main → worker */
export type ToWorker =
  | {
      op: 'read';
      id: number;
      fd: number;
      pos: number;
      len: number;
      buf: number;
      /** The read buffer, the first time its id is used. */
      bufSab?: SharedArrayBuffer;
      checks: number;
      checksSpec?: ByteCheckSpec;
      reserve: number;
      lastLen: number;
      obsLo: number;
      obsHi: number;
      maxLineBytes: number;
      maxLines: number;
      maxBytes: number;
    }
  | { op: 'release'; ids: number[] };

/** worker → main */
export interface FromWorker {
  id: number;
  error?: { message: string; code?: string };
  bytesRead: number;
  /** Offset in the chunk of the first line the worker left (the caller goes on from there). */
  stop: number;
  /** No whole line is left after stop (every line of the chunk is in a run). */
  whole: boolean;
  /** Runs, five numbers each: slab id, start, end, lines, end of the last line in the chunk. */
  runs: number[];
  lastHeader: number;
  lastLen: number;
  outLines: number;
  outBytes: number;
  errLines: number;
  errBytes: number;
  /** Time (ms) of the first line, -1 when there was none. */
  firstMs: number;
  /** Slabs new to the main thread: id, then its memory. */
  slabs: (number | SharedArrayBuffer)[];
  /** Slabs the worker let go of. */
  dropped: number[];
}

/** A run the thread made: lines encoded in src[start, end); endRel: after its last line. */
export interface ThreadRun {
  src: Buffer;
  start: number;
  end: number;
  lines: number;
  endRel: number;
}

/** A chunk read (and partly decoded) by the thread. */
export interface ThreadChunk {
  bytesRead: number;
  /** The chunk (a shared buffer of the pool): valid until done(). */
  chunk: Buffer;
  runs: ThreadRun[];
  stop: number;
  whole: boolean;
  /** The observed time (ms) its runs carry. */
  observedMs: number;
  lastHeader: number;
  lastLen: number;
  outLines: number;
  outBytes: number;
  errLines: number;
  errBytes: number;
  firstMs: number;
  /** The checks the runs were made with. */
  spec: ByteCheckSpec;
  /** The read buffer goes back to the pool. */
  done(): void;
  /** The runs will not be used (the chunk was not trusted, or the checks changed): let them go. */
  discard(): void;
}

export interface ThreadReadParams {
  observedMs: number;
  reserve: number;
  lastLen: number;
  obsLo: number;
  obsHi: number;
  spec: ByteCheckSpec;
  maxLineBytes: number;
  maxLines: number;
  maxBytes: number;
}

const owners = new WeakMap<Buffer, { t: DecodeThread; id: number }>();
setForeignSlabRelease((b) => {
  const o = owners.get(b);
  if (o) o.t.released(o.id);
});

interface Pending {
  resolve: (r: FromWorker) => void;
  reject: (e: Error) => void;
}

/** Where the worker's module is: next to this one (built .js, or .ts run through tsx in tests). */
function workerUrl(): { url: URL; execArgv: string[] } {
  const ts = import.meta.url.endsWith('.ts');
  return {
    url: new URL(ts ? './decode-worker.ts' : './decode-worker.js', import.meta.url),
    // (Not the agent's own flags: V8 flags are refused for a worker.)
    execArgv: ts ? ['--import', 'tsx'] : [],
  };
}

export class DecodeThread {
  private worker: Worker | undefined;
  private failed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly slabs = new Map<number, Buffer>();
  private readonly specs = new WeakMap<ByteCheckSpec, number>();
  private nextSpec = 0;
  /** Read buffers by size: free ids; every buffer by id. */
  private readonly freeBufs = new Map<number, number[]>();
  private readonly bufs = new Map<number, Buffer>();
  private nextBuf = 0;
  private releases: number[] = [];
  private releaseScheduled = false;
  /** Chunks read and decoded here (tests, the status of the agent). */
  reads = 0;
  private readyResolve!: () => void;
  /** Resolves once the worker runs (or failed). */
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));

  constructor(private readonly o: { onError?: (err: Error) => void } = {}) {
    this.start();
  }

  /** False once the worker failed (or was closed): tailers then read on the main thread. */
  get usable(): boolean {
    return this.worker !== undefined && !this.failed;
  }

  private start(): void {
    try {
      const { url, execArgv } = workerUrl();
      this.worker = new Worker(url, { execArgv, stdout: false, stderr: false });
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => {
      if (m.id === 0) {
        this.readyResolve();
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker?.unref();
      p.resolve(m);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.failed) this.fail(new Error(`the decode thread exited (code ${code})`));
    });
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.readyResolve();
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.slabs.clear();
    this.o.onError?.(err);
    void w?.terminate();
  }

  /** Stops the worker (runs already made stay valid: their memory is shared). */
  async close(): Promise<void> {
    if (this.failed) return;
    this.failed = true;
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new Error('the decode thread was closed'));
    this.pending.clear();
    await w?.terminate();
  }

  /** A run in one of the worker's slabs was acknowledged: reported with the batch's others. */
  released(id: number): void {
    if (!this.worker) return;
    this.releases.push(id);
    if (this.releaseScheduled) return;
    this.releaseScheduled = true;
    setImmediate(() => {
      this.releaseScheduled = false;
      const ids = this.releases;
      this.releases = [];
      if (ids.length > 0) this.worker?.postMessage({ op: 'release', ids } satisfies ToWorker);
    });
  }

  private acquireBuf(size: number): { id: number; sab?: SharedArrayBuffer } {
    const free = this.freeBufs.get(size);
    const id = free?.pop();
    if (id !== undefined) return { id };
    const nid = ++this.nextBuf;
    const sab = new SharedArrayBuffer(size);
    this.bufs.set(nid, Buffer.from(sab));
    return { id: nid, sab };
  }

  private releaseBuf(id: number): void {
    const b = this.bufs.get(id)!;
    let free = this.freeBufs.get(b.length);
    if (!free) this.freeBufs.set(b.length, (free = []));
    free.push(id);
  }

  /**
   * Reads len bytes at pos from fd (the caller's open descriptor, not closed before this
   * settles) and decodes the chunk's leading run lines. Rejects as a read would (an fs error).
   */
  async read(fd: number, pos: number, len: number, p: ThreadReadParams): Promise<ThreadChunk> {
    const w = this.worker;
    if (!w || this.failed) throw new Error('the decode thread is not running');
    const buf = this.acquireBuf(len);
    let checks = this.specs.get(p.spec);
    let checksSpec: ByteCheckSpec | undefined;
    if (checks === undefined) {
      checks = ++this.nextSpec;
      this.specs.set(p.spec, checks);
      checksSpec = { auto: p.spec.auto, literals: [...p.spec.literals] };
    }
    const id = ++this.nextId;
    let m: FromWorker;
    try {
      m = await new Promise<FromWorker>((resolve, reject) => {
        if (this.pending.size === 0) w.ref();
        this.pending.set(id, { resolve, reject });
        const req: ToWorker = {
          op: 'read',
          id,
          fd,
          pos,
          len,
          buf: buf.id,
          checks: checks!,
          reserve: p.reserve,
          lastLen: p.lastLen,
          obsLo: p.obsLo,
          obsHi: p.obsHi,
          maxLineBytes: p.maxLineBytes,
          maxLines: p.maxLines,
          maxBytes: p.maxBytes,
        };
        if (buf.sab) req.bufSab = buf.sab;
        if (checksSpec) req.checksSpec = checksSpec;
        w.postMessage(req);
      });
    } catch (err) {
      // A worker that failed may still have been reading into the buffer: never reuse it.
      if (!this.failed) this.releaseBuf(buf.id);
      throw err;
    }
    for (let k = 0; k < m.slabs.length; k += 2) {
      const sid = m.slabs[k] as number;
      const b = Buffer.from(m.slabs[k + 1] as SharedArrayBuffer);
      this.slabs.set(sid, b);
      owners.set(b, { t: this, id: sid });
    }
    for (const sid of m.dropped) this.slabs.delete(sid);
    if (m.error) {
      this.releaseBuf(buf.id);
      const err = new Error(m.error.message) as NodeJS.ErrnoException;
      if (m.error.code !== undefined) err.code = m.error.code;
      throw err;
    }
    this.reads++;
    const runs: ThreadRun[] = [];
    for (let k = 0; k < m.runs.length; k += 5) {
      runs.push({
        src: this.slabs.get(m.runs[k]!)!,
        start: m.runs[k + 1]!,
        end: m.runs[k + 2]!,
        lines: m.runs[k + 3]!,
        endRel: m.runs[k + 4]!,
      });
    }
    let done = false;
    return {
      bytesRead: m.bytesRead,
      chunk: this.bufs.get(buf.id)!.subarray(0, m.bytesRead),
      runs,
      stop: m.stop,
      whole: m.whole,
      observedMs: p.observedMs,
      lastHeader: m.lastHeader,
      lastLen: m.lastLen,
      outLines: m.outLines,
      outBytes: m.outBytes,
      errLines: m.errLines,
      errBytes: m.errBytes,
      firstMs: m.firstMs,
      spec: p.spec,
      done: () => {
        if (done) return;
        done = true;
        this.releaseBuf(buf.id);
      },
      discard: () => {
        for (let k = 0; k < m.runs.length; k += 5) this.released(m.runs[k]!);
      },
    };
  }
}
