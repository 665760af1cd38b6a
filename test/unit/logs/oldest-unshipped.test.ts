// harbormaster_log_oldest_unshipped_seconds on the real filesystem: the age of the oldest log data
// not delivered yet. Read and not acknowledged: the time of the oldest such record (to the read
// chunk); not read (reading paused on a full queue): the mtime of the oldest generation with
// unread bytes; nothing outstanding: 0.
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { acknowledge } from '../../../src/logs/ack.js';
import { encodeJsonFileLine } from '../../../src/logs/jsonfile.js';
import { LogTelemetry } from '../../../src/logs/telemetry.js';
import { Tailer } from '../../../src/logs/tailer.js';
import type { LogRecord } from '../../../src/logs/types.js';
import { FakeDockerLog } from './fake-docker.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const CHUNK = 256;

const dirs: string[] = [];
const tailers: Tailer[] = [];
afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string, t?: Tailer): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    t?.wake();
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A json-file line written at `ms`. */
function line(i: number, ms: number): string {
  return encodeJsonFileLine(`line ${i}\n`, 'stdout', new Date(ms).toISOString());
}

function tailer(file: string, gate?: () => Promise<void> | undefined) {
  const got: LogRecord[] = [];
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: { waitForSpace: gate ?? (() => undefined), push: (r) => got.push(r) },
    stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
    startAt: 'beginning',
    maxLineBytes: 1 << 20,
    chunkBytes: CHUNK,
    partialFlushMs: 60_000,
    pollMs: 5,
    watch: false,
  });
  tailers.push(t);
  t.start();
  return { t, got };
}

function gauge(t: Tailer, nowMs: number): Promise<number> {
  const registry = new Registry();
  const tel = new LogTelemetry(registry, pino({ level: 'silent' }), () => nowMs);
  tel.addSource(
    'c',
    'web',
    'file',
    () => t.bytesBehind(),
    () => t.oldestUnshippedMs(),
  );
  return registry
    .getSingleMetric('harbormaster_log_oldest_unshipped_seconds')!
    .get()
    .then((m) => m.values[0]!.value);
}

describe('oldest unshipped log data', () => {
  it('is the time of the oldest record not acknowledged, to the read chunk, and 0 when all are', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-oldest-'));
    dirs.push(dir);
    const file = path.join(dir, 'c-json.log');
    // one line a second for 40 s, in chunks of a few lines
    writeFileSync(file, Array.from({ length: 40 }, (_, i) => line(i, T0 + i * 1000)).join(''));
    const perChunk = Math.ceil(CHUNK / line(10, T0).length) + 1;
    const { t, got } = tailer(file);
    await until(() => got.length === 40, '40 records', t);
    expect(t.oldestUnshippedMs()).toBe(T0);
    expect(await gauge(t, T0 + 90_000)).toBe(90);

    // the receiver took the first 25: the oldest outstanding is line 25 (written at T0 + 25 s),
    // reported at most one chunk early
    for (const r of got.slice(0, 25)) acknowledge(r.ack);
    const oldest = t.oldestUnshippedMs()!;
    expect(oldest).toBeLessThanOrEqual(T0 + 25_000);
    expect(oldest).toBeGreaterThanOrEqual(T0 + (25 - perChunk) * 1000);
    const age = await gauge(t, T0 + 90_000);
    expect(age).toBeGreaterThanOrEqual(65);
    expect(age).toBeLessThanOrEqual(65 + perChunk);

    // an out-of-order ack changes nothing: the oldest is still outstanding
    acknowledge(got[39]!.ack);
    expect(t.oldestUnshippedMs()).toBe(oldest);

    for (const r of got) acknowledge(r.ack);
    expect(t.oldestUnshippedMs()).toBeUndefined();
    expect(await gauge(t, T0 + 90_000)).toBe(0);
  });

  it('while reading is paused, is the mtime of the oldest generation with unread bytes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-oldest-'));
    dirs.push(dir);
    const w = new FakeDockerLog(dir, 3);
    for (let i = 0; i < 20; i++) w.raw(line(i, T0 + i * 1000));
    w.rotateRename();
    for (let i = 20; i < 30; i++) w.raw(line(i, T0 + i * 1000));
    // Docker wrote the rotated generation last at T0 + 19 s, the live file at T0 + 29 s
    utimesSync(`${w.file}.1`, (T0 + 19_000) / 1000, (T0 + 19_000) / 1000);
    utimesSync(w.file, (T0 + 29_000) / 1000, (T0 + 29_000) / 1000);
    let open!: () => void;
    let full: Promise<void> | undefined = new Promise<void>((r) => (open = r));
    const { t, got } = tailer(w.file, () => full);
    const total = statSync(w.file).size + statSync(`${w.file}.1`).size;
    await until(() => t.bytesBehind() === total, 'both generations open, nothing read', t);
    expect(got).toEqual([]);
    expect(t.oldestUnshippedMs()).toBe(T0 + 19_000);
    expect(await gauge(t, T0 + 60_000)).toBe(41);

    // it keeps rising while paused; new data in the live file does not make it younger
    appendFileSync(w.file, line(30, T0 + 30_000));
    utimesSync(w.file, (T0 + 30_000) / 1000, (T0 + 30_000) / 1000);
    await until(() => t.bytesBehind() === total + line(30, 0).length, 'the append seen', t);
    expect(await gauge(t, T0 + 120_000)).toBe(101);

    // room again: everything is read; until acknowledged, the oldest record's time counts
    full = undefined;
    open();
    await until(() => got.length === 31, 'all records', t);
    expect(t.bytesBehind()).toBe(0);
    expect(t.oldestUnshippedMs()).toBe(T0);
    for (const r of got) acknowledge(r.ack);
    expect(await gauge(t, T0 + 120_000)).toBe(0);
  });
});
