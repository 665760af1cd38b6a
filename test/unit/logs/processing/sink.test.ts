// The pipeline ↔ processing bridge: conversions both ways, checkpoint positions under multiline
// hold-back, commit-only markers for dropped lines, and the export loop committing them.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../../../src/logs/checkpoints.js';
import { cursorFromCheckpoint } from '../../../../src/logs/cursor-store.js';
import { BoundedQueue, ExportLoop } from '../../../../src/logs/pipeline.js';
import { defaultProcessingConfig, LogProcessor } from '../../../../src/logs/processing/index.js';
import { ProcessingSink } from '../../../../src/logs/processing/sink.js';
import type { LogPosition, LogRecord, LogResource } from '../../../../src/logs/types.js';

const resource: LogResource = { key: 'c1', attributes: { 'container.id': 'c1' } };
const file = { dev: 1, ino: 2, fp: 'f', fpLen: 10, seq: 1 };

class Collect {
  out: LogRecord[] = [];
  waitForSpace(): undefined {
    return undefined;
  }
  push(r: LogRecord): void {
    this.out.push(r);
  }
}

let offset = 0;
function line(body: string, stream: 'stdout' | 'stderr' = 'stdout'): LogRecord {
  offset += body.length + 60;
  return {
    resource,
    body: Buffer.from(body),
    stream,
    timeSec: 1_700_000_000,
    timeNanos: offset,
    observedMs: 1_700_000_000_123,
    source: 'c1',
    pos: { file, offset },
  };
}

function setup(labels: Record<string, string> = {}, drops: string[] = []) {
  const lp = new LogProcessor(defaultProcessingConfig(), {
    hooks: { drop: (r, n) => drops.push(`${r}:${n}`) },
  });
  const out = new Collect();
  const sink = new ProcessingSink(lp, labels, 'web', out);
  return { sink, out };
}

describe('ProcessingSink', () => {
  it('ships plain lines with their own Buffer, position and time; parsed lines with fields', () => {
    const { sink, out } = setup();
    const a = line('plain text');
    sink.push(a);
    const b = line(
      '{"level":"warn","msg":"slow","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","n":-3,"log.iostream":"x"}',
      'stderr',
    );
    sink.push(b);
    sink.close();
    expect(out.out[0]!.body).toBe(a.body); // not copied
    expect(out.out[0]).toMatchObject({ pos: a.pos, timeNanos: a.timeNanos, source: 'c1' });
    expect(out.out[0]!.attributes).toBeUndefined();
    expect(out.out[1]).toMatchObject({
      body: Buffer.from('slow'),
      stream: 'stderr',
      severityNumber: 13,
      severityText: 'warn',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      attributes: { n: -3 },
      droppedAttributesCount: 1, // log.iostream of the line loses against the pipeline's own
      pos: b.pos,
    });
  });

  it('never lets a position pass the first line of a held group; markers for drops', () => {
    const drops: string[] = [];
    const { sink, out } = setup(
      {
        'harbormaster.logs.multiline.preset': 'java',
        'harbormaster.logs.drop': '^DEBUG',
      },
      drops,
    );
    const e1 = line('Exception in thread "main" java.lang.IllegalStateException: boom', 'stderr');
    const e2 = line('\tat com.example.App.main(App.java:5)', 'stderr');
    const o1 = line('hello', 'stdout');
    const o2 = line('DEBUG noisy', 'stdout');
    const o3 = line('world', 'stdout');
    for (const r of [e1, e2, o1, o2, o3]) sink.push(r);
    // stderr trace still held (no following line); stdout: hello shipped, DEBUG dropped,
    // world held (java opens a group on every line).
    const shipped = out.out.filter((r) => !r.commitOnly);
    expect(shipped.map((r) => r.body.toString())).toEqual(['hello']);
    const before = (p: LogPosition | undefined) => p?.offset ?? -1;
    // everything so far may commit no further than before e1 (nothing: e1 was the first line)
    for (const r of out.out) expect(before(r.pos)).toBeLessThan(e1.pos!.offset);
    expect(drops).toEqual(['filter_drop:1']);
    sink.flushAll();
    const all = out.out.filter((r) => !r.commitOnly).map((r) => r.body.toString());
    expect(all).toContain(`${e1.body.toString()}\n${e2.body.toString()}`);
    expect(all).toContain('world');
    // after everything is out, the last commit is the last line
    const last = out.out[out.out.length - 1]!;
    expect(last.pos?.offset).toBe(o3.pos!.offset);
    // positions never move backwards
    let prev = -1;
    for (const r of out.out)
      if (r.pos) {
        expect(r.pos.offset).toBeGreaterThanOrEqual(prev);
        prev = r.pos.offset;
      }
    sink.close();
  });

  it('the export loop commits markers of dropped lines without sending them, API cursors too', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-sink-'));
    const store = new CheckpointStore(dir, pino({ level: 'silent' }), false);
    const queue = new BoundedQueue(1 << 20, 100, 1 << 20);
    const sent: LogRecord[][] = [];
    const loop = new ExportLoop({
      exporter: {
        name: 'fake',
        export: (b) => {
          sent.push([...b]);
          return Promise.resolve({ status: 'success' });
        },
      },
      store,
      queue,
      batchDelayMs: 5,
      retryInitialMs: 10,
      retryMaxMs: 10,
      pathOf: () => '/x',
      hooks: {
        exported: () => {},
        exportFailure: () => {},
        retry: () => {},
        drop: () => {},
        warn: () => {},
      },
    });
    const lp = new LogProcessor(defaultProcessingConfig());
    const fileSink = new ProcessingSink(lp, { 'harbormaster.logs.drop': 'drop me' }, 'a', queue);
    const a = line('keep');
    const b = line('drop me');
    fileSink.push(a);
    fileSink.push(b);
    const apiSink = new ProcessingSink(lp, { 'harbormaster.logs.keep': 'never' }, 'b', queue);
    const cursor = { stdout: { t: '1700000000000000001', n: 1 } };
    apiSink.push({ ...line('x'), source: 'c2', pos: undefined, apiCursor: cursor });
    loop.start();
    await new Promise((r) => setTimeout(r, 100));
    await loop.stop(100);
    expect(sent.flat().map((r) => r.body.toString())).toEqual(['keep']);
    expect(store.get('c1')?.offset).toBe(b.pos!.offset);
    expect(cursorFromCheckpoint(store.get('c2'))).toEqual(cursor);
  });
});
