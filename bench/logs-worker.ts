// Child process of bench/logs-throughput.ts: runs the real log pipeline (tailers, decode,
// enrich, bounded queue, batching, protobuf encode, OTLP/HTTP, checkpoints with fsync) over
// prepared json-file logs and reports its own CPU time and peak RSS.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { logsSection } from '../src/config/sections/logs.js';
import { OtlpLogsExporter } from '../src/exporters/otlp-logs.js';
import { CheckpointStore } from '../src/logs/checkpoints.js';
import { startGrabber } from '../src/logs/grabber.js';
import { wasmDecodes } from '../src/logs/jsonfile.js';
import { BoundedQueue, ExportLoop } from '../src/logs/pipeline.js';
import { defaultProcessingConfig, LogProcessor } from '../src/logs/processing/index.js';
import { Tailer } from '../src/logs/tailer.js';
import { batchLines, processorRunSink } from '../src/logs/run.js';
import type { LogResource, RecordSink } from '../src/logs/types.js';

interface Job {
  files: string[];
  url: string;
  total: number;
  compression: 'gzip' | 'none';
  /** Stop after this long even if not everything was exported (backlog runs). */
  stopAfterMs?: number;
  /** The receiver's outage at the start (backlog runs): peak RSS is also reported for it. */
  outageMs?: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
// stderr: stdout carries the result JSON.
const log = pino({ level: 'warn' }, pino.destination(2));
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hm-bench-state-'));
const store = new CheckpointStore(stateDir, log);
// The agent's defaults (queue_max_bytes, batch_max_records, batch_max_bytes).
const defaults = logsSection.parse({});
const queue = new BoundedQueue(
  defaults.queue_max_bytes,
  defaults.batch_max_records,
  defaults.batch_max_bytes,
);
const exporter = new OtlpLogsExporter({
  url: job.url,
  protocol: 'http/protobuf',
  headers: {},
  compression: job.compression,
  timeoutMs: 10_000,
});
let exported = 0;
// The export loop's two waits per batch (one batch in flight): requests and checkpoint writes.
let exportSeconds = 0;
let checkpointSeconds = 0;
let finish: () => void;
const allDone = new Promise<void>((r) => (finish = r));
const loop = new ExportLoop({
  exporter,
  checkpoints: store,
  queue,
  batchDelayMs: 200,
  retryInitialMs: 100,
  retryMaxMs: 1000,
  hooks: {
    exported: (batch) => {
      exported += batchLines(batch);
      if (exported >= job.total) finish();
    },
    exportFailure: () => {},
    retry: () => {},
    drop: () => {},
    warn: (c, obj, msg) => {
      if (!c.startsWith('export-retry')) log.warn(obj, msg);
    },
    exportSeconds: (s) => (exportSeconds += s),
    checkpointSeconds: (s) => (checkpointSeconds += s),
  },
});
const processor = new LogProcessor(defaultProcessingConfig(), { timers: true });
function sinkFor(i: number, resource: LogResource): RecordSink {
  if (process.env.HM_BENCH_PROCESSING === '0') return queue;
  const proc = processor.forContainer(
    {},
    { emit: (r) => queue.push(r), hold: (d) => queue.hold(d) },
    `bench-${i}`,
  );
  return {
    waitForSpace: () => queue.waitForSpace(),
    push: (r) => proc.push(r),
    hold: (d) => queue.hold(d),
    // As in the agent (LogsComponent): whole lines the byte checks pass are encoded at read
    // time, in runs. HM_BENCH_RUNS=0: every line as a record.
    ...(process.env.HM_BENCH_RUNS === '0'
      ? {}
      : {
          runs: processorRunSink({
            processor: () => proc,
            push: (r) => queue.push(r),
            batchRecords: defaults.batch_max_records,
            batchBytes: defaults.batch_max_bytes,
            resource,
          }),
        }),
  };
}
// As in the agent (LogsComponent.start): the grabber thread is up before the first tailer.
if (!(await startGrabber())) throw new Error('the grabber thread did not start');
// Idle RSS: everything loaded and built, nothing read yet (the memory goals are "idle + N MiB").
global.gc?.();
const idleRssMiB = process.memoryUsage.rss() / 1048576;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
loop.start();
const tailers = job.files.map((f, i) => {
  const resource: LogResource = {
    key: `c${i}`,
    attributes: {
      'container.id': `c${i}`.padEnd(64, '0'),
      'container.name': `bench-${i}`,
      'container.image.name': 'busybox',
      'container.image.tags': ['latest'],
      'host.name': os.hostname(),
    },
  };
  return new Tailer({
    key: `c${i}`,
    path: f,
    resource,
    // As in the agent: the processing stages with the default config (parser auto, default
    // redaction) between partial reassembly and the queue. HM_BENCH_PROCESSING=0: without.
    sink: sinkFor(i, resource),
    commit: (cp) => store.set(`c${i}`, cp),
    stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
    startAt: 'beginning',
    maxLineBytes: 1024 * 1024,
    chunkBytes: 256 * 1024,
    partialFlushMs: 5000,
    pollMs: 500,
  });
});
for (const t of tailers) t.start();
let peakWhileDown = 0;
const startedAt = Date.now();
// Only the backlog run needs a sampler (peak RSS during the outage); the overall peak is the
// kernel's maxRSS.
const outageMs = job.outageMs;
const sampler =
  outageMs === undefined
    ? undefined
    : setInterval(() => {
        if (Date.now() - startedAt < outageMs)
          peakWhileDown = Math.max(peakWhileDown, process.memoryUsage.rss() / 1048576);
      }, 100);
if (job.stopAfterMs !== undefined)
  await Promise.race([allDone, new Promise((r) => setTimeout(r, job.stopAfterMs))]);
else await allDone;
if (sampler) clearInterval(sampler);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
await Promise.all(tailers.map((t) => t.stop()));
await loop.stop(1000);
// Each run's state dir is its own: removed, or hundreds pile up in /tmp over benchmark sessions.
await store.close();
rmSync(stateDir, { recursive: true, force: true });
process.stdout.write(
  JSON.stringify({
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    idleRssMiB,
    peakRssWhileDownMiB: peakWhileDown,
    queueBytes: queue.bytes,
    queueHeld: queue.held,
    heapUsedMiB: process.memoryUsage().heapUsed / 1048576,
    externalMiB: process.memoryUsage().external / 1048576,
    exported,
    checkpointWrites: store.writeCount,
    exportSeconds,
    checkpointSeconds,
    // bodies the WebAssembly loop decoded (-1: no WebAssembly here)
    wasmBodies: wasmDecodes(),
  }),
);
process.exit(0);
