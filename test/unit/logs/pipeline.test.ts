// The bounded queue's full / hold / wake cycle, a tailer pausing on it, and the export loop's
// acknowledgement: real files, a real tailer, the real checkpoint store and the OTLP exporter
// against the test receiver (which decodes the real protobuf wire format).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { OtlpLogsExporter } from '../../../src/exporters/otlp-logs.js';
import { CheckpointStore } from '../../../src/logs/checkpoints.js';
import { BoundedQueue, ExportLoop, RECORD_OVERHEAD } from '../../../src/logs/pipeline.js';
import { newRecord } from '../../../src/logs/record.js';
import { Tailer } from '../../../src/logs/tailer.js';
import type { DropReason, LogRecord } from '../../../src/logs/types.js';
import {
  allLogRecords,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../../support/otlp-receiver.js';
import { FakeDockerLog } from './fake-docker.js';

const resource = { key: 'c', attributes: { 'container.name': 'web' } };
const rec = (body: string): LogRecord =>
  newRecord(resource, 'stdout', Buffer.from(body), 1, 0, 0, undefined);

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** The OTLP/HTTP protobuf exporter to the test receiver, uncompressed. */
function protobufExporter(receiver: OtlpReceiver): OtlpLogsExporter {
  return new OtlpLogsExporter({
    url: `${receiver.url}/v1/logs`,
    protocol: 'http/protobuf',
    headers: {},
    compression: 'none',
    timeoutMs: 5000,
  });
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('bounded queue', () => {
  it('reports full at the bound, keeps a taken batch counted until it is released, then wakes producers', async () => {
    const size = 100 + RECORD_OVERHEAD;
    const q = new BoundedQueue(size * 4, 2, 1 << 20);
    for (let i = 0; i < 3; i++) q.push(rec('x'.repeat(100)));
    expect(q.waitForSpace()).toBeUndefined();
    q.push(rec('x'.repeat(100)));
    expect(q.full()).toBe(true);
    let woke = false;
    const waiting = q.waitForSpace()!.then(() => (woke = true));
    const batch = q.take();
    expect(batch.records).toHaveLength(2);
    expect(q.bytes).toBe(size * 2);
    expect(q.inflight).toBe(size * 2);
    // The batch in flight still counts: producers keep waiting until it is acknowledged.
    expect(q.full()).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(woke).toBe(false);
    q.release(batch.bytes);
    await waiting;
    expect(woke).toBe(true);
    expect(q.total).toBe(size * 2);
  });

  it('hands records out in order, in batches within both limits, across ring growth and wraparound', () => {
    // Random pushes and takes against a plain array: the ring (1,024 slots at first) grows and
    // wraps many times; every record comes out once, in order, and the byte counts add up.
    const sizeOf = (r: LogRecord): number => (r.body as Buffer).length + RECORD_OVERHEAD;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ push: fc.integer({ min: 1, max: 1200 }), len: fc.nat(200) }),
            fc.constant({ take: true as const }),
          ),
          { minLength: 1, maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1000, max: 400_000 }),
        (ops, batchRecords, batchBytes) => {
          const q = new BoundedQueue(1 << 30, batchRecords, batchBytes);
          const model: LogRecord[] = [];
          let modelBytes = 0;
          let next = 0;
          const takeOne = (): void => {
            const { records, bytes } = q.take();
            const want = model.splice(0, records.length);
            let same = records.length === want.length;
            let size = 0;
            for (let k = 0; k < records.length; k++) {
              if (records[k] !== want[k]) same = false;
              size += sizeOf(records[k] as LogRecord);
            }
            expect(same).toBe(true);
            if (want.length > 0) expect(records.length).toBeGreaterThan(0);
            expect(records.length).toBeLessThanOrEqual(batchRecords);
            expect(bytes).toBe(size);
            // A batch stops before the byte limit, unless its first record alone passes it.
            if (records.length > 1) expect(bytes).toBeLessThanOrEqual(batchBytes);
            modelBytes -= size;
            q.release(bytes);
          };
          for (const op of ops) {
            if ('take' in op) takeOne();
            else
              for (let i = 0; i < op.push; i++) {
                const r = rec(String(next++).padEnd(op.len, '.'));
                q.push(r);
                model.push(r);
                modelBytes += sizeOf(r);
              }
            expect(q.length).toBe(model.length);
            expect(q.bytes).toBe(modelBytes);
          }
          while (model.length > 0) takeOne();
          expect(q.length).toBe(0);
          expect(q.take().records).toHaveLength(0);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('counts bytes held outside the queue (partial lines, multiline groups) against the same bound', async () => {
    const q = new BoundedQueue(1000, 100, 1 << 20);
    q.push(rec('a'));
    expect(q.waitForSpace()).toBeUndefined();
    q.hold(900);
    const p = q.waitForSpace();
    expect(p).toBeDefined();
    q.hold(-900);
    await p;
    expect(q.waitForSpace()).toBeUndefined();
    // With nothing queued a source may always go on (only it can release what it holds).
    q.take();
    q.hold(5000);
    expect(q.waitForSpace()).toBeUndefined();
  });

  it('a tailer pauses on a full queue (unread data stays on disk) and resumes when it drains', async () => {
    const dir = tempDir('hm-q-');
    const w = new FakeDockerLog(dir);
    const total = 3000;
    for (let i = 0; i < total; i++) w.write('stdout', `line ${i} ${'p'.repeat(80)}`);
    const q = new BoundedQueue(16 * 1024, 50, 1 << 20);
    const t = new Tailer({
      key: 'c',
      path: w.file,
      resource,
      sink: q,
      stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
      startAt: 'beginning',
      maxLineBytes: 1 << 20,
      chunkBytes: 4096,
      partialFlushMs: 60_000,
      pollMs: 10,
      watch: false,
    });
    t.start();
    cleanup.push(() => t.stop());
    await until(() => q.full(), 'the queue to fill');
    const behind = t.bytesBehind();
    expect(behind).toBeGreaterThan(statSync(w.file).size / 2);
    // Paused: polling for a while shows no progress and the bound holds (one chunk of slack).
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 5));
      expect(t.bytesBehind()).toBe(behind);
      expect(q.bytes).toBeLessThan(16 * 1024 + 4096 + 50 * RECORD_OVERHEAD);
    }
    // While paused, bytes behind follow what the container keeps writing.
    const size0 = statSync(w.file).size;
    w.write('stdout', 'written while paused');
    const added = statSync(w.file).size - size0;
    await until(() => t.bytesBehind() > behind, 'bytes behind to grow while paused');
    expect(q.full()).toBe(true);
    expect(t.bytesBehind()).toBe(behind + added);
    const got: string[] = [];
    await until(() => {
      const b = q.take();
      for (const r of b.records) got.push((r as LogRecord).body.toString());
      q.release(b.bytes);
      return got.length === total + 1;
    }, 'every line after draining');
    expect(got[0]).toBe(`line 0 ${'p'.repeat(80)}`);
    expect(got[total - 1]).toBe(`line ${total - 1} ${'p'.repeat(80)}`);
    expect(got[total]).toBe('written while paused');
    expect(t.bytesBehind()).toBe(0);
  });
});

describe('a paused tailer', () => {
  it('stops promptly while the queue stays full', async () => {
    const dir = tempDir('hm-q-');
    const w = new FakeDockerLog(dir);
    for (let i = 0; i < 500; i++) w.write('stdout', `line ${i} ${'p'.repeat(80)}`);
    const q = new BoundedQueue(4096, 50, 1 << 20);
    const t = new Tailer({
      key: 'c',
      path: w.file,
      resource,
      sink: q,
      stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
      startAt: 'beginning',
      maxLineBytes: 1 << 20,
      chunkBytes: 4096,
      partialFlushMs: 60_000,
      pollMs: 10,
      watch: false,
    });
    t.start();
    await until(() => q.full(), 'the queue to fill');
    let stopped = false;
    const stopping = t.stop().then(() => (stopped = true));
    await until(() => stopped, 'stop() to return with the queue still full');
    await stopping;
    expect(q.full()).toBe(true);
  });
});

describe('export loop acknowledgement', () => {
  let receiver: OtlpReceiver;

  async function setup(lines: number, status = 200) {
    receiver = await startOtlpReceiver({ behaviour: { status } });
    cleanup.push(() => receiver.close());
    const dir = tempDir('hm-loop-');
    const w = new FakeDockerLog(dir);
    for (let i = 0; i < lines; i++) w.write(i % 3 === 0 ? 'stderr' : 'stdout', `line ${i}`);
    const store = new CheckpointStore(path.join(dir, 'state'), pino({ level: 'silent' }));
    const queue = new BoundedQueue(1 << 20, 250, 1 << 20);
    const drops: DropReason[] = [];
    const timed = { exports: [] as number[], checkpoints: [] as number[] };
    const exporter = protobufExporter(receiver);
    const loop = new ExportLoop({
      exporter,
      checkpoints: store,
      queue,
      batchDelayMs: 20,
      retryInitialMs: 20,
      retryMaxMs: 50,
      hooks: {
        exported: () => {},
        exportFailure: () => {},
        retry: () => {},
        drop: (r, n) => {
          for (let i = 0; i < n; i++) drops.push(r);
        },
        warn: () => {},
        exportSeconds: (sec) => timed.exports.push(sec),
        checkpointSeconds: (sec) => timed.checkpoints.push(sec),
      },
    });
    const t = new Tailer({
      key: 'c',
      path: w.file,
      resource,
      sink: queue,
      stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
      commit: (cp) => store.set('c', cp),
      startAt: 'beginning',
      maxLineBytes: 1 << 20,
      chunkBytes: 8192,
      partialFlushMs: 60_000,
      pollMs: 10,
      watch: false,
    });
    loop.start();
    t.start();
    cleanup.push(async () => {
      await t.stop();
      await loop.stop(100);
      await exporter.shutdown();
    });
    return { w, store, drops, t, timed, size: statSync(w.file).size };
  }

  it('commits the checkpoint only for delivered batches, with one checkpoint write per batch', async () => {
    const s = await setup(2000);
    await until(() => s.store.get('c')?.offset === s.size, 'the checkpoint at the end of the file');
    const got = allLogRecords(receiver.logs());
    expect(got).toHaveLength(2000);
    const batches = receiver.requests();
    expect(batches).toBeGreaterThanOrEqual(8); // 2000 lines in batches of at most 250
    expect(s.store.writeCount).toBeGreaterThanOrEqual(1);
    expect(s.store.writeCount).toBeLessThanOrEqual(batches);
    expect(s.t.unacknowledged).toBe(0);
    // Every request and every checkpoint write is timed (harbormaster_log_export_duration_seconds,
    // harbormaster_log_checkpoint_write_seconds): the two waits that bound the shipping rate.
    expect(s.timed.exports).toHaveLength(batches);
    // (the last write's time is reported once its flush returns)
    await until(
      () => s.timed.checkpoints.length === s.store.writeCount,
      'every checkpoint write timed',
    );
    for (const sec of [...s.timed.exports, ...s.timed.checkpoints]) {
      expect(sec).toBeGreaterThan(0);
      expect(sec).toBeLessThan(5);
    }
  });

  it('holds the checkpoint while the receiver answers 503 and commits once it recovers', async () => {
    const s = await setup(500, 503);
    // Until the tailer has read all 500 lines (under load it may still be reading after the
    // first failed attempts), or a checkpoint shows up, which must not happen.
    await until(
      () =>
        receiver.requests() >= 3 &&
        s.timed.exports.length >= 3 &&
        (s.t.unacknowledged === 500 || s.store.get('c') !== undefined),
      'a few failed attempts with every line read',
    );
    expect(s.store.get('c')).toBeUndefined();
    expect(s.t.unacknowledged).toBe(500);
    // failed attempts are timed too (the wait above); no checkpoint was written
    expect(s.timed.checkpoints).toHaveLength(0);
    receiver.setStatus(200);
    await until(() => s.store.get('c')?.offset === s.size, 'the checkpoint after recovery');
    expect(allLogRecords(receiver.logs())).toHaveLength(500);
  });

  it('a permanently rejected batch is dropped, counted as export_rejected, and acknowledged', async () => {
    const s = await setup(300, 400);
    await until(
      () => s.store.get('c')?.offset === s.size,
      'the checkpoint past the rejected lines',
    );
    expect(s.drops.filter((d) => d === 'export_rejected')).toHaveLength(300);
    expect(receiver.logs()).toHaveLength(0);
  });
});

describe('export loop batching', () => {
  // Records pushed straight into the queue, the real exporter and test receiver, checkpoints in a
  // real store; the batch delay is long, so what arrives early was not sent by the delay.
  async function loopWith(batchRecords: number, batchDelayMs: number) {
    const receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    const store = new CheckpointStore(
      path.join(tempDir('hm-batching-'), 'state'),
      pino({ level: 'silent' }),
    );
    const queue = new BoundedQueue(1 << 24, batchRecords, 1 << 22);
    const exporter = protobufExporter(receiver);
    const sizes: number[] = [];
    const loop = new ExportLoop({
      exporter,
      checkpoints: store,
      queue,
      batchDelayMs,
      retryInitialMs: 20,
      retryMaxMs: 50,
      hooks: {
        exported: (b) => sizes.push(b.length),
        exportFailure: () => {},
        retry: () => {},
        drop: () => {},
        warn: () => {},
      },
    });
    loop.start();
    cleanup.push(async () => {
      await loop.stop(100);
      await exporter.shutdown();
    });
    // Delivered as the export loop saw it (the receiver records a request before its answer).
    const delivered = (): number => sizes.reduce((a, b) => a + b, 0);
    cleanup.push(() => store.close());
    return { queue, sizes, delivered, received: () => allLogRecords(receiver.logs()).length };
  }

  it('sends the rest of a burst once nothing more is queued, without waiting out the batch delay', async () => {
    const l = await loopWith(100, 30_000);
    for (let i = 0; i < 250; i++) l.queue.push(rec(`burst ${i}`));
    // 100 + 100 + the last 50 well before the 30 s delay
    await until(() => l.delivered() === 250, 'the whole burst delivered', 5000);
    expect(l.sizes).toEqual([100, 100, 50]);
    expect(l.received()).toBe(250);
  });

  it('a trickle that never fills a batch is batched by the delay (no request per line)', async () => {
    const l = await loopWith(1000, 250);
    for (let i = 0; i < 60; i++) {
      l.queue.push(rec(`trickle ${i}`));
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => l.delivered() === 60, 'the trickle delivered', 5000);
    // 60 lines over about 0.6–0.7 s with a 0.25 s delay: a few requests, however the timers fall
    expect(l.sizes.length).toBeLessThanOrEqual(6);
  });

  it('a stream faster than batches fill sends full batches, at most one early request per full one', async () => {
    const l = await loopWith(100, 30_000);
    // 20 lines every 2 ms for about a second: never quiet for long
    for (let i = 0; i < 500; i++) {
      for (let k = 0; k < 20; k++) l.queue.push(rec(`stream ${i}.${k}`));
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => l.delivered() === 10_000, 'the stream delivered', 10_000);
    const full = l.sizes.filter((n) => n === 100).length;
    expect(full).toBeGreaterThanOrEqual(50);
    expect(l.sizes.length - full).toBeLessThanOrEqual(full);
  });
});
