// Runs of encoded lines (src/logs/run.ts): a tailer whose sink takes runs sends the receiver the
// same bytes as one that makes a record of every line, through the default processing stages,
// for hostile json-file content (escapes, control bytes, multi-byte and invalid UTF-8, \u escapes,
// redaction hits, JSON bodies, partial records, Docker attrs, other time layouts, malformed
// records, bodies around the protobuf length boundaries), and commits the same checkpoint.
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeLogsRequest } from '../../../src/exporters/otlp-logs-encode.js';
import { toNdjsonLine } from '../../../src/exporters/ndjson.js';
import { AckTracker, acknowledge } from '../../../src/logs/ack.js';
import type { Checkpoint } from '../../../src/logs/checkpoints.js';
import { defaultProcessingConfig } from '../../../src/logs/processing/config.js';
import { slabCounts } from '../../../src/logs/jsonfile.js';
import { BoundedQueue, ExportLoop } from '../../../src/logs/pipeline.js';
import { LogProcessor } from '../../../src/logs/processing/processor.js';
import {
  LineRun,
  RUN_OVERHEAD,
  batchLines,
  batchRecords,
  frameLine,
  headerBytes,
  type BatchItem,
} from '../../../src/logs/run.js';
import { Tailer } from '../../../src/logs/tailer.js';
import type { DropReason, ExportResult, LogResource } from '../../../src/logs/types.js';
import {
  allLogRecords,
  decodeOtlp,
  type ExportLogsServiceRequest,
} from '../../support/otlp-receiver.js';

const bodyArb: fc.Arbitrary<string> = fc.oneof(
  // lengths around the 127/128-byte boundary of body, record and AnyValue lengths
  { weight: 6, arbitrary: fc.integer({ min: 50, max: 140 }).map((n) => 'b'.repeat(n)) },
  fc.integer({ min: 4000, max: 4100 }).map((n) => 'l'.repeat(n)),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 150 }),
  fc.constantFrom(
    '',
    'say "hi" \\ back\tslash',
    'ctl \u0001\u001f bytes',
    'é ü 😀 中文',
    'password=hunter2 rest',
    'Authorization: Bearer abcdef0123456789',
    '{"level":"error","msg":"boom","trace_id":"0af7651916cd43dd8448eb211c80319c"}',
    'level=warn msg="logfmt line" user=bob',
    'a/b/c',
  ),
);

type Line =
  | { k: 'line'; stream: 'stdout' | 'stderr'; body: string; complete: boolean; time: number }
  | { k: 'attrs'; body: string }
  | { k: 'raw'; bytes: Buffer };

const TIMES = [
  '2023-11-14T22:13:20.123456789Z',
  '2023-11-14T22:13:20.5Z',
  '2023-11-14T22:13:20Z',
  '2023-11-14T23:13:20.000000001+01:00',
];

const lineArb: fc.Arbitrary<Line> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      k: fc.constant('line' as const),
      stream: fc.constantFrom('stdout' as const, 'stderr' as const),
      body: bodyArb,
      complete: fc.boolean().map((b) => b || Math.random() < 0.8),
      time: fc.integer({ min: 0, max: TIMES.length - 1 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('attrs' as const), body: bodyArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('raw' as const),
      bytes: fc.constantFrom(
        Buffer.from('{"log":"broken\n'),
        Buffer.from([0x00, 0xff, 0xfe, 0x0a]),
        Buffer.concat([
          Buffer.from('{"log":"bad utf8 '),
          Buffer.from([0xc3, 0x28, 0xff]),
          Buffer.from(' end\\n","stream":"stderr","time":"2024-01-01T00:00:00.5Z"}\n'),
        ]),
        Buffer.from(
          '{"log":"\\u00e9t\\u00e9 \\ud83d\\ude00\\n","stream":"stdout","time":"2024-01-01T00:00:01Z"}\n',
        ),
        Buffer.from(
          '{"log":"slash \\/ and \\b\\f\\r\\n","stream":"stdout","time":"2024-01-01T00:00:02Z"}\n',
        ),
        Buffer.from(
          '{"stream":"stdout","log":"other key order\\n","time":"2024-01-01T00:00:03Z"}\n',
        ),
        Buffer.from(
          '{"log":"no newline escape","stream":"stdout","time":"2024-01-01T00:00:04Z"}\n',
        ),
      ),
    }),
  },
);

function render(l: Line): Buffer {
  if (l.k === 'raw') return l.bytes;
  if (l.k === 'attrs')
    return Buffer.from(
      `{"log":${JSON.stringify(`${l.body}\n`)},"stream":"stdout","attrs":{"tag":"web"},"time":"2024-01-01T00:00:05Z"}\n`,
    );
  const log = JSON.stringify(l.complete ? `${l.body}\n` : l.body);
  return Buffer.from(`{"log":${log},"stream":"${l.stream}","time":"${TIMES[l.time]}"}\n`);
}

interface Outcome {
  items: BatchItem[];
  drops: DropReason[];
  checkpoint: Checkpoint | undefined;
}

async function tail(file: string, resource: LogResource, runs: boolean): Promise<Outcome> {
  const items: BatchItem[] = [];
  const drops: DropReason[] = [];
  let checkpoint: Checkpoint | undefined;
  const proc = new LogProcessor(defaultProcessingConfig()).forContainer(
    {},
    { emit: (r) => items.push(r), hold: () => {} },
  );
  const t = new Tailer({
    key: 'c',
    path: file,
    resource,
    sink: {
      waitForSpace: () => undefined,
      push: (r) => proc.push(r),
      ...(runs
        ? {
            runs: {
              passes: (b: Buffer, s: number, e: number) =>
                proc.byteChecking && proc.passesBytes(b, s, e),
              push: (x: LineRun) => items.push(x),
              maxLines: 50,
              maxBytes: 20_000,
            },
          }
        : {}),
    },
    stats: { lines: () => {}, drop: (r) => drops.push(r), truncated: () => {}, warn: () => {} },
    commit: (cp) => (checkpoint = cp),
    startAt: 'beginning',
    maxLineBytes: 3000,
    chunkBytes: 16 * 1024,
    partialFlushMs: 1e9,
    pollMs: 5,
    watch: false,
    now: () => 1_700_000_000_123,
  });
  t.start();
  const size = statSync(file).size;
  const end = Date.now() + 10_000;
  while (t.bytesBehind() > 0 || t.openInodes().length === 0) {
    if (Date.now() > end) throw new Error('the tailer did not read the file');
    t.wake();
    await new Promise((r) => setTimeout(r, 2));
  }
  expect(size).toBeGreaterThan(0);
  for (const x of items) acknowledge(x.ack);
  await t.stop();
  return { items, drops, checkpoint };
}

describe('runs of encoded lines', () => {
  it('send the same protobuf and NDJSON as records of every line, and commit the same checkpoint (property)', async () => {
    let runLines = 0;
    let longRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineArb, { minLength: 1, maxLength: 120, size: 'medium' }),
        async (lines) => {
          const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-runs-'));
          try {
            const file = path.join(dir, 'c-json.log');
            writeFileSync(file, '');
            for (const l of lines) appendFileSync(file, render(l));
            // Every line complete at the end: nothing stays in partial-line reassembly.
            appendFileSync(
              file,
              render({ k: 'line', stream: 'stdout', body: 'x', complete: true, time: 0 }),
            );
            appendFileSync(
              file,
              render({ k: 'line', stream: 'stderr', body: 'y', complete: true, time: 0 }),
            );
            const resource: LogResource = { key: 'c', attributes: { 'container.name': 'web' } };
            const withRuns = await tail(file, resource, true);
            const plain = await tail(file, resource, false);
            const runs = withRuns.items.filter((x) => x instanceof LineRun);
            runLines += batchLines(runs);
            if (runs.some((r) => r.lines > 1)) longRuns++;
            expect(plain.items.some((x) => x instanceof LineRun)).toBe(false);
            expect(batchLines(withRuns.items)).toBe(plain.items.length);
            expect(encodeLogsRequest(withRuns.items).equals(encodeLogsRequest(plain.items))).toBe(
              true,
            );
            expect(batchRecords(withRuns.items).map(toNdjsonLine)).toEqual(
              plain.items.map((r) => toNdjsonLine(r as never)),
            );
            expect(withRuns.drops).toEqual(plain.drops);
            expect(withRuns.checkpoint?.offset).toBe(statSync(file).size);
            expect(plain.checkpoint?.offset).toBe(statSync(file).size);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
    // The runs were taken, not only offered, and held more than one line.
    expect(runLines).toBeGreaterThan(500);
    expect(longRuns).toBeGreaterThan(10);
  }, 120_000);

  it('end at the sink limits (lines and bytes) and at the end of each read chunk', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-runs-'));
    try {
      const file = path.join(dir, 'c-json.log');
      let text = '';
      for (let i = 0; i < 2000; i++)
        text += `{"log":"line ${i} ${'x'.repeat(i % 90)}\\n","stream":"stdout","time":"2023-11-14T22:13:20.123456789Z"}\n`;
      writeFileSync(file, text);
      const o = await tail(file, { key: 'c', attributes: {} }, true);
      const runs = o.items.filter((x) => x instanceof LineRun);
      expect(batchLines(o.items)).toBe(2000);
      expect(runs.length).toBe(o.items.length);
      for (const r of runs) {
        expect(r.lines).toBeLessThanOrEqual(50);
        expect(r.end - r.start).toBeLessThanOrEqual(20_000);
      }
      expect(Math.max(...runs.map((r) => r.lines))).toBe(50);
      expect(o.checkpoint?.offset).toBe(Buffer.byteLength(text));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reuse a slab only once every run in it is acknowledged: 30,000 lines through the export loop with failures, records and fragments between runs arrive exactly', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-runs-'));
    const before = slabCounts();
    try {
      const file = path.join(dir, 'c-json.log');
      const want: string[] = [];
      let text = '';
      for (let i = 0; i < 30_000; i++) {
        let body = `line ${i} ${'x'.repeat(i % 150)}`;
        // a JSON body (a record: its slab is never reused), a fragment pair, or a plain line
        if (i % 97 === 0) body = `{"level":"info","n":${i}}`;
        if (i % 131 === 0) {
          text += `{"log":"frag ${i} ","stream":"stdout","time":"2023-11-14T22:13:20.1Z"}\n`;
          body = `frag ${i} ${body}`;
          text += `{"log":${JSON.stringify(`${body.slice(`frag ${i} `.length)}\n`)},"stream":"stdout","time":"2023-11-14T22:13:20.1Z"}\n`;
        } else
          text += `{"log":${JSON.stringify(`${body}\n`)},"stream":"stdout","time":"2023-11-14T22:13:20.123456789Z"}\n`;
        want.push(body);
      }
      writeFileSync(file, text);
      const got: string[] = [];
      let calls = 0;
      const queue = new BoundedQueue(512 * 1024, 1000, 256 * 1024);
      const loop = new ExportLoop({
        exporter: {
          name: 'decode',
          acceptsRuns: true,
          export: (batch): Promise<ExportResult> => {
            const req = encodeLogsRequest(batch);
            // every fifth attempt fails: the batch is sent again, its runs still unreleased
            if (++calls % 5 === 0)
              return Promise.resolve({ status: 'retryable', error: new Error('try again') });
            const d = decodeOtlp('logs', req, 'application/x-protobuf') as ExportLogsServiceRequest;
            for (const l of allLogRecords([d])) got.push(String(l.body?.stringValue));
            return new Promise((r) => setTimeout(() => r({ status: 'success' }), 1));
          },
        },
        checkpoints: { flush: () => Promise.resolve() },
        queue,
        batchDelayMs: 1,
        retryInitialMs: 1,
        retryMaxMs: 2,
        hooks: {
          exported: () => {},
          exportFailure: () => {},
          retry: () => {},
          drop: () => {},
          warn: () => {},
        },
      });
      const proc = new LogProcessor(defaultProcessingConfig()).forContainer(
        {},
        { emit: (r) => queue.push(r), hold: (d) => queue.hold(d) },
      );
      const t = new Tailer({
        key: 'c',
        path: file,
        resource: { key: 'c', attributes: {} },
        sink: {
          waitForSpace: () => queue.waitForSpace(),
          push: (r) => proc.push(r),
          hold: (d) => queue.hold(d),
          runs: {
            passes: (b, s, e) => proc.byteChecking && proc.passesBytes(b, s, e),
            push: (x) => queue.push(x),
            maxLines: 1000,
            maxBytes: 256 * 1024 - RUN_OVERHEAD,
          },
        },
        stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
        startAt: 'beginning',
        maxLineBytes: 1 << 20,
        chunkBytes: 64 * 1024,
        partialFlushMs: 1e9,
        pollMs: 5,
        watch: false,
      });
      loop.start();
      t.start();
      const end = Date.now() + 60_000;
      while (got.length < want.length && Date.now() < end)
        await new Promise((r) => setTimeout(r, 5));
      await t.stop();
      await loop.stop(1000);
      expect(got.length).toBe(want.length);
      expect(got).toEqual(want);
      // Slabs were reused (the file's bodies fill about 70 of them), and some were not (records).
      const after = slabCounts();
      expect(after.reused - before.reused).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a batch of runs of many containers stays within logs.batch_max_bytes as a request (the resource of each counts)', () => {
    const tracker = new AckTracker<string>(
      () => {},
      () => {},
    );
    const queue = new BoundedQueue(1 << 30, 100_000, 256 * 1024);
    let lines = 0;
    for (let c = 0; c < 300; c++) {
      const resource: LogResource = {
        key: `c${c}`,
        attributes: {
          'container.id': c.toString(16).padStart(64, '0'),
          'container.name': `service-${c}-replica-with-a-long-name`,
          'container.image.name': 'registry.example.com/team/some-service',
          'container.image.tags': ['1.2.3', 'latest'],
          'host.name': 'node-17.example.internal',
          'service.name': `service-${c}`,
        },
      };
      const buf = Buffer.alloc(64 * 1024);
      const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
      let end = 0;
      for (let k = 0; k < 3; k++) {
        const bl = 300 + ((c * 7 + k) % 500);
        const h = headerBytes(bl);
        buf.fill(0x61, end + h, end + h + bl);
        end = frameLine(buf, v, end, bl, 'stdout', 1_700_000_000, 5, 0, 0);
      }
      queue.push(
        new LineRun(
          resource,
          buf,
          0,
          end,
          3,
          tracker as AckTracker<unknown>,
          tracker.nextSeq(`c${c}`, c),
        ),
      );
      lines += 3;
    }
    let got = 0;
    while (queue.length > 0) {
      const { records, bytes } = queue.take();
      const req = encodeLogsRequest(records);
      expect(req.length).toBeLessThanOrEqual(256 * 1024);
      const d = decodeOtlp('logs', req, 'application/x-protobuf') as ExportLogsServiceRequest;
      got += allLogRecords([d]).length;
      queue.release(bytes);
    }
    expect(got).toBe(lines);
  });
});
