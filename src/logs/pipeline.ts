// Bounded queue between the tailers and the exporter, batching, retries, and acknowledgement:
// checkpoints advance only for batches the exporter delivered (or that were permanently
// rejected, which is counted as a drop).
import type { CheckpointStore } from './checkpoints.js';
import { apiCheckpoint } from './cursor-store.js';
import type { TailerSink } from './tailer.js';
import type { DropReason, ExportResult, LogExporter, LogPosition, LogRecord } from './types.js';
import { sleep } from '../util/sleep.js';

// JS objects per record (record, position, Buffer view) cost far more than the body of a short line.
const RECORD_OVERHEAD = 320;

export function recordSize(r: LogRecord): number {
  return r.body.length + RECORD_OVERHEAD;
}

/** FIFO with a byte bound; producers wait for space, the consumer waits for a batch. */
export class BoundedQueue implements TailerSink {
  private items: LogRecord[] = [];
  private head = 0;
  bytes = 0;
  /** Bytes tailers hold outside the queue (partial lines being reassembled), same bound. */
  held = 0;
  private spaceWaiters: (() => void)[] = [];
  private spacePromise: Promise<void> | undefined;
  private dataWaiter: (() => void) | undefined;
  oldestAt = 0;

  constructor(
    readonly maxBytes: number,
    private readonly batchRecords: number,
    private readonly batchBytes: number,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Full: queued + held bytes reach the bound. With nothing queued a tailer may always go on
   * (only it can release what it holds, by completing its line). */
  private full(): boolean {
    return this.bytes > 0 && this.bytes + this.held >= this.maxBytes;
  }

  hold(delta: number): void {
    this.held += delta;
    if (delta < 0) this.wakeProducers();
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

  push(r: LogRecord): void {
    if (this.length === 0) this.oldestAt = Date.now();
    this.items.push(r);
    this.bytes += recordSize(r);
    if (this.dataWaiter && (this.length >= this.batchRecords || this.bytes >= this.batchBytes)) {
      const w = this.dataWaiter;
      this.dataWaiter = undefined;
      w();
    }
  }

  /**
   * A commit-only record (lines dropped by processing): replaces such a marker of the same source
   * at the tail instead of queueing another (a rate-limited flood costs one marker).
   */
  pushCommit(r: LogRecord): void {
    const i = this.items.length - 1;
    const last = i >= this.head ? this.items[i] : undefined;
    if (last?.commitOnly && last.source === r.source) {
      this.items[i] = r;
      return;
    }
    this.push(r);
  }

  /** Resolves when a full batch is queued, or after ms. */
  waitForBatch(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.length >= this.batchRecords || this.bytes >= this.batchBytes) return Promise.resolve();
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

  take(): LogRecord[] {
    const out: LogRecord[] = [];
    let bytes = 0;
    while (this.head < this.items.length && out.length < this.batchRecords) {
      const r = this.items[this.head]!;
      const sz = recordSize(r);
      if (out.length > 0 && bytes + sz > this.batchBytes) break;
      out.push(r);
      bytes += sz;
      this.head++;
    }
    this.bytes -= bytes;
    if (this.head > 65536 || this.head === this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.length > 0) this.oldestAt = Date.now();
    this.wakeProducers();
    return out;
  }
}

export interface PipelineHooks {
  exported(n: number): void;
  exportFailure(kind: 'retryable' | 'permanent'): void;
  retry(): void;
  drop(reason: DropReason, n: number): void;
  warn(cause: string, obj: Record<string, unknown>, msg: string): void;
  /** A source's position was committed (delivered). */
  committed?(source: string, pos: LogPosition): void;
  /** An Engine API source's cursor was committed (delivered). */
  committedApi?(source: string, cursor: NonNullable<LogRecord['apiCursor']>): void;
}

export interface PipelineOptions {
  exporter: LogExporter;
  store: CheckpointStore;
  queue: BoundedQueue;
  batchDelayMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  hooks: PipelineHooks;
  /** Live log path of a source (container id), for the checkpoint entry. */
  pathOf(source: string): string;
}

/** The export loop: one batch in flight; its checkpoint is persisted before the next is sent. */
export class ExportLoop {
  private readonly controller = new AbortController();
  private loop: Promise<void> | undefined;
  private draining = false;
  private drainDeadline = 0;
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
    try {
      await this.o.store.flush();
    } catch (err) {
      this.o.hooks.warn('checkpoint-write', { err }, 'Writing the log checkpoint file failed.');
    }
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
      const age = Date.now() - queue.oldestAt;
      if (!this.draining && age < this.o.batchDelayMs) {
        await queue.waitForBatch(this.o.batchDelayMs - age, signal);
      }
      if (signal.aborted) return;
      const batch = queue.take();
      if (batch.length === 0) continue;
      // Commit-only markers (lines dropped by processing) are committed with the batch, not sent.
      const toSend = batch.some((r) => r.commitOnly) ? batch.filter((r) => !r.commitOnly) : batch;
      const delivered = toSend.length === 0 || (await this.send(toSend, signal));
      if (!delivered) return; // shutting down: not acknowledged, re-read after restart
      this.commit(batch);
      try {
        await this.o.store.flush();
      } catch (err) {
        this.o.hooks.warn(
          'checkpoint-write',
          { err, file: this.o.store.file },
          'Writing the log checkpoint file failed; delivered lines may be sent again after a restart.',
        );
      }
    }
  }

  /** True when the batch is done with (delivered or permanently rejected). */
  private async send(batch: LogRecord[], signal: AbortSignal): Promise<boolean> {
    let backoff = this.o.retryInitialMs;
    for (let attempt = 0; ; attempt++) {
      let res: ExportResult;
      try {
        res = await this.o.exporter.export(batch, signal);
      } catch (err) {
        res = { status: 'retryable', error: err instanceof Error ? err : new Error(String(err)) };
      }
      if (res.status === 'success') {
        this.o.hooks.exported(batch.length);
        this.lastSuccessAt = Date.now();
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        return true;
      }
      if (res.status === 'failure') {
        this.o.hooks.exportFailure('permanent');
        this.o.hooks.drop('export_rejected', batch.length);
        this.o.hooks.warn(
          `export-rejected:${res.error.message.slice(0, 40)}`,
          { err: res.error, records: batch.length },
          'The log receiver rejected a batch permanently; it was dropped and counted (harbormaster_log_drops_total{reason="export_rejected"}).',
        );
        return true;
      }
      if (signal.aborted) return false;
      this.o.hooks.exportFailure('retryable');
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

  private commit(batch: LogRecord[]): void {
    const last = new Map<string, LogPosition>();
    const lastApi = new Map<string, NonNullable<LogRecord['apiCursor']>>();
    for (const r of batch) {
      if (r.source && r.pos) last.set(r.source, r.pos);
      else if (r.source && r.apiCursor) lastApi.set(r.source, r.apiCursor);
    }
    // Engine API readers: their cursor, in the same checkpoint file (same atomic write).
    for (const [source, cursor] of lastApi) {
      this.o.store.set(source, apiCheckpoint(source, cursor));
      this.o.hooks.committedApi?.(source, cursor);
    }
    for (const [source, pos] of last) {
      this.o.store.set(source, {
        path: this.o.pathOf(source),
        dev: pos.file.dev,
        ino: pos.file.ino,
        fp: pos.file.fp,
        fpLen: pos.file.fpLen,
        offset: pos.offset,
      });
      this.o.hooks.committed?.(source, pos);
    }
  }
}
