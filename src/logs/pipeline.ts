// Bounded queue between the sources and the exporter, batching, retries, and acknowledgement.
// The export loop sends one batch at a time; once it is delivered (or permanently rejected, which
// is counted as a drop) it acknowledges every record's ack back to its source (src/logs/ack.ts)
// and then persists the checkpoints the sources committed: one write (and fsync) per
// acknowledged batch, whatever number of sources it touched.
//
// Batching: a batch is sent when it is full, or when its oldest record has waited
// logs.batch_delay_seconds; but the rest of a backlog (a batch was taken and more was waiting
// behind it) goes as soon as nothing has been queued for BURST_QUIET_MS: at the end of a burst
// or catch-up nothing more is coming soon, and the last lines need not wait out the delay. That
// costs at most one early, smaller request per full batch; a trickle of lines (no batch ever
// full) is batched by the delay as before.
//
// Memory bound: queued bodies, bytes sources and stages hold outside the queue (partial lines,
// multiline groups: hold()) and the batch in flight (until acknowledged) count against
// queue_max_bytes; a full queue makes sources wait (waitForSpace), so unread data stays on disk.
import { acknowledge } from './ack.js';
import { bodyBytes } from './record.js';
import {
  LineRun,
  RUN_OVERHEAD,
  batchLines,
  releaseRun,
  resourceAllowance,
  type BatchItem,
} from './run.js';
import type { DropReason, ExportResult, LogExporter, RecordSink } from './types.js';
import { sleep } from '../util/sleep.js';

// Per-record cost besides the body bytes: the record object, the tracker's slots for it and, for
// records not born from a body range (record.ts BytesRecord), the Buffer view of the body and the
// ack token (an estimate, not a measurement; a tailer's whole line costs less, about 150 bytes,
// so the bound errs on the safe side).
export const RECORD_OVERHEAD = 320;

/**
 * Bytes an item holds: a record's body and overhead; a run's encoded lines (its slab range), its
 * overhead and its resource's share of a request (the batch byte limit is a request size limit).
 */
export function recordSize(r: BatchItem): number {
  if (r instanceof LineRun) return r.end - r.start + RUN_OVERHEAD + resourceAllowance(r.resource);
  return bodyBytes(r) + RECORD_OVERHEAD;
}

/**
 * FIFO with a byte bound; producers wait for space, the consumer waits for a batch.
 *
 * The records wait in a ring (a power-of-two array, doubled when full, never shrunk: the bound
 * keeps it at most about queue_max_bytes / RECORD_OVERHEAD slots, 512 KiB at the default), so a
 * steady stream allocates nothing here: a growing array and the slices that compacted it were
 * large-object garbage that only a full collection frees, and a batch is one array of its exact
 * size.
 */
export class BoundedQueue implements RecordSink {
  private ring: (BatchItem | undefined)[] = new Array<BatchItem | undefined>(1024).fill(undefined);
  /** Slot of the oldest record. */
  private head = 0;
  private count = 0;
  /** Lines queued (a run counts its lines: the batch limit counts records). */
  private lines = 0;
  /** Bytes of queued records. */
  bytes = 0;
  /** Bytes held outside the queue (partial lines, multiline groups), same bound. */
  held = 0;
  /** Bytes of the batch taken and not yet acknowledged (in flight, retried). */
  inflight = 0;
  private spaceWaiters: (() => void)[] = [];
  private spacePromise: Promise<void> | undefined;
  private dataWaiter: (() => void) | undefined;
  oldestAt = 0;
  /** Entries pushed since the start (the export loop tells a burst's end by it standing still). */
  pushes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly batchRecords: number,
    private readonly batchBytes: number,
  ) {}

  /** Entries queued (records and runs). */
  get length(): number {
    return this.count;
  }

  /** Lines queued (a run counts as its lines). */
  get queuedLines(): number {
    return this.lines;
  }

  /** Every byte the bound counts. */
  get total(): number {
    return this.bytes + this.held + this.inflight;
  }

  /** Full: the counted bytes reach the bound. With nothing queued a source may always go on
   * (only it can release what it holds, by completing its line). */
  full(): boolean {
    return this.bytes > 0 && this.total >= this.maxBytes;
  }

  hold(delta: number): void {
    this.held += delta;
    if (delta < 0) this.wakeProducers();
  }

  /** The batch taken before is done with (acknowledged): its bytes are free. */
  release(bytes: number): void {
    this.inflight -= bytes;
    this.wakeProducers();
  }

  private wakeProducers(): void {
    if (this.full() || this.spaceWaiters.length === 0) return;
    const ws = this.spaceWaiters;
    this.spaceWaiters = [];
    this.spacePromise = undefined;
    for (const w of ws) w();
  }

  waitForSpace(): Promise<void> | undefined {
    if (!this.full()) return undefined;
    this.spacePromise ??= new Promise<void>((r) => this.spaceWaiters.push(r));
    return this.spacePromise;
  }

  push(r: BatchItem): void {
    this.pushes++;
    if (this.count === 0) this.oldestAt = Date.now();
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) & (this.ring.length - 1)] = r;
    this.count++;
    this.lines += r instanceof LineRun ? r.lines : 1;
    this.bytes += recordSize(r);
    if (this.dataWaiter && (this.lines >= this.batchRecords || this.bytes >= this.batchBytes)) {
      const w = this.dataWaiter;
      this.dataWaiter = undefined;
      w();
    }
  }

  /** A full batch is queued (batchRecords lines or batchBytes). */
  get batchReady(): boolean {
    return this.lines >= this.batchRecords || this.bytes >= this.batchBytes;
  }

  /** Resolves when a full batch is queued, or after ms. */
  waitForBatch(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.batchReady) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.dataWaiter = undefined;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        this.dataWaiter = undefined;
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.dataWaiter = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
    });
  }

  /** Twice the slots, the records in order from slot 0. */
  private grow(): void {
    const old = this.ring;
    const n = old.length;
    const next = new Array<BatchItem | undefined>(n * 2).fill(undefined);
    for (let i = 0; i < n; i++) next[i] = old[(this.head + i) & (n - 1)];
    this.ring = next;
    this.head = 0;
  }

  /**
   * The next batch (at most batchRecords lines and batchBytes, or one entry over them); its bytes
   * count as in flight until release().
   */
  take(): { records: BatchItem[]; bytes: number } {
    const ring = this.ring;
    const mask = ring.length - 1;
    const head = this.head;
    let k = 0;
    let bytes = 0;
    let lines = 0;
    while (k < this.count) {
      const x = ring[(head + k) & mask]!;
      const sz = recordSize(x);
      const n = x instanceof LineRun ? x.lines : 1;
      if (k > 0 && (bytes + sz > this.batchBytes || lines + n > this.batchRecords)) break;
      bytes += sz;
      lines += n;
      k++;
    }
    const out = new Array<BatchItem>(k);
    for (let i = 0; i < k; i++) {
      const j = (head + i) & mask;
      out[i] = ring[j]!;
      ring[j] = undefined;
    }
    this.head = (head + k) & mask;
    this.count -= k;
    this.lines -= lines;
    this.bytes -= bytes;
    this.inflight += bytes;
    if (this.count > 0) this.oldestAt = Date.now();
    return { records: out, bytes };
  }
}

export interface PipelineHooks {
  exported(batch: readonly BatchItem[]): void;
  /** A failed attempt at sending batch. */
  exportFailure(kind: 'retryable' | 'permanent', error?: Error, batch?: readonly BatchItem[]): void;
  retry(): void;
  drop(reason: DropReason, n: number): void;
  warn(cause: string, obj: Record<string, unknown>, msg: string): void;
  /** Persisting checkpoints failed (counted; warned about at a bounded rate). */
  checkpointFailed?(err: unknown): void;
  /** One export attempt took this long (encoding, sending, the receiver's answer). */
  exportSeconds?(s: number): void;
  /** Persisting the checkpoints after a batch took this long (the next batch waited for it). */
  checkpointSeconds?(s: number): void;
}

export interface PipelineOptions {
  exporter: LogExporter;
  /** Persists what the sources committed (the checkpoint store); called once per batch. */
  checkpoints: {
    flush(): Promise<void>;
    /** Resolves once everything flushed is fully written (both copies: checkpoints.ts). */
    settle?(): Promise<void>;
    readonly file?: string;
    readonly writeCount?: number;
  };
  queue: BoundedQueue;
  batchDelayMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  hooks: PipelineHooks;
}

/**
 * After a batch that left more queued behind it, the rest is sent once nothing has been pushed for
 * this long (a chunk's lines are pushed about every millisecond or two while a source reads).
 */
export const BURST_QUIET_MS = 10;

/** The export loop: one batch in flight; its checkpoint is persisted before the next is sent. */
export class ExportLoop {
  private readonly controller = new AbortController();
  private loop: Promise<void> | undefined;
  private draining = false;
  private drainDeadline = 0;
  /** The last batch taken left records queued behind it (a backlog or a burst being sent). */
  private backlogged = false;
  lastError: string | undefined;
  lastSuccessAt = 0;
  consecutiveFailures = 0;

  constructor(private readonly o: PipelineOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Sends what is queued (until deadlineMs), then stops. Unsent records are re-read next start. */
  async stop(drainMs: number): Promise<void> {
    this.draining = true;
    this.drainDeadline = Date.now() + drainMs;
    const timer = setTimeout(() => this.controller.abort(), drainMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
      this.controller.abort();
    }
    await this.flushCheckpoints();
    await this.o.checkpoints.settle?.();
  }

  private async run(): Promise<void> {
    const { queue } = this.o;
    const signal = this.controller.signal;
    while (!signal.aborted) {
      if (queue.length === 0) {
        if (this.draining) return;
        await queue.waitForBatch(this.o.batchDelayMs, signal);
        continue;
      }
      if (!this.draining) await this.waitToSend(signal);
      if (signal.aborted) return;
      const { records, bytes } = queue.take();
      this.backlogged = queue.length > 0;
      if (records.length === 0) continue;
      const delivered = await this.send(records, signal);
      if (!delivered) return; // shutting down: not acknowledged, re-read after restart
      // Acks go back to the sources; their trackers commit into the checkpoint store. Newest
      // first: every ack but a source's oldest only marks its token, and the oldest then commits
      // the whole run at once (one commit and checkpoint entry per source per batch, not per
      // record; the committed position is the same in any order).
      for (let k = records.length - 1; k >= 0; k--) {
        const x = records[k]!;
        acknowledge(x.ack);
        if (x instanceof LineRun) releaseRun(x);
      }
      queue.release(bytes);
      await this.flushCheckpoints();
    }
  }

  /**
   * Until a full batch is queued or the oldest record has waited the batch delay; after a batch
   * that left more behind it, also until nothing has been pushed for BURST_QUIET_MS.
   */
  private async waitToSend(signal: AbortSignal): Promise<void> {
    const { queue } = this.o;
    let seen = queue.pushes;
    for (;;) {
      const left = this.o.batchDelayMs - (Date.now() - queue.oldestAt);
      if (left <= 0 || signal.aborted) return;
      if (!this.backlogged) {
        await queue.waitForBatch(left, signal);
        return;
      }
      await queue.waitForBatch(Math.min(left, BURST_QUIET_MS), signal);
      if (queue.pushes === seen || queue.batchReady || queue.full()) return;
      seen = queue.pushes;
    }
  }

  private async flushCheckpoints(): Promise<void> {
    const t0 = performance.now();
    const writes = this.o.checkpoints.writeCount;
    try {
      await this.o.checkpoints.flush();
      // (timed when it wrote: nothing to persist is no write)
      if (writes === undefined || this.o.checkpoints.writeCount !== writes)
        this.o.hooks.checkpointSeconds?.((performance.now() - t0) / 1000);
    } catch (err) {
      if (this.o.hooks.checkpointFailed) this.o.hooks.checkpointFailed(err);
      else
        this.o.hooks.warn(
          'checkpoint-write',
          { err, file: this.o.checkpoints.file },
          'Writing the log checkpoint file failed; delivered lines may be sent again after a restart.',
        );
    }
  }

  /** True when the batch is done with (delivered or permanently rejected). */
  private async send(batch: BatchItem[], signal: AbortSignal): Promise<boolean> {
    let backoff = this.o.retryInitialMs;
    for (let attempt = 0; ; attempt++) {
      let res: ExportResult;
      const t0 = performance.now();
      try {
        res = await this.o.exporter.export(batch, signal);
      } catch (err) {
        res = { status: 'retryable', error: err instanceof Error ? err : new Error(String(err)) };
      }
      this.o.hooks.exportSeconds?.((performance.now() - t0) / 1000);
      if (res.status === 'success') {
        if (res.rejected) {
          this.o.hooks.drop('export_rejected', res.rejected);
          this.o.hooks.warn(
            `export-partial:${(res.message ?? '').slice(0, 40)}`,
            { rejected: res.rejected, message: res.message },
            'The log receiver rejected part of a batch (OTLP partial success); those records were dropped and counted (harbormaster_log_drops_total{reason="export_rejected"}).',
          );
        }
        this.o.hooks.exported(batch);
        this.lastSuccessAt = Date.now();
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        return true;
      }
      if (res.status === 'failure') {
        this.o.hooks.exportFailure('permanent', res.error, batch);
        const lines = batchLines(batch);
        this.o.hooks.drop('export_rejected', lines);
        this.o.hooks.warn(
          `export-rejected:${res.error.message.slice(0, 40)}`,
          { err: res.error, records: lines },
          'The log receiver rejected a batch permanently; it was dropped and counted (harbormaster_log_drops_total{reason="export_rejected"}).',
        );
        return true;
      }
      if (signal.aborted) return false;
      this.o.hooks.exportFailure('retryable', res.error, batch);
      this.consecutiveFailures++;
      this.lastError = res.error.message;
      this.o.hooks.warn(
        `export-retry:${res.error.message.slice(0, 40)}`,
        { err: res.error },
        'Log export failed; retrying with backoff (logged once per cause).',
      );
      if (this.draining && Date.now() >= this.drainDeadline) return false;
      const jittered = backoff * (0.5 + Math.random());
      const wait = res.retryAfterMs !== undefined ? Math.max(res.retryAfterMs, 50) : jittered;
      backoff = Math.min(backoff * 2, this.o.retryMaxMs);
      await sleep(Math.min(wait, this.o.retryMaxMs), signal);
      if (signal.aborted) return false;
      this.o.hooks.retry();
    }
  }
}
