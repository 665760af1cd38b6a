// Compressed generations (`--log-opt compress=true`): a checkpoint that points into a generation
// Docker compressed while the agent was stopped is found again by the fingerprint of the
// uncompressed first bytes; the rest of it and every newer generation (compressed or not) is
// delivered once, in order, nothing counted as lost.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FP_LEN, Tailer } from '../../../src/logs/tailer.js';
import type { DropReason, LogRecord } from '../../../src/logs/types.js';
import type { Checkpoint } from '../../../src/logs/checkpoints.js';

const dirs: string[] = [];
const tailers: Tailer[] = [];
afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const line = (s: string): string =>
  `${JSON.stringify({ log: `${s}\n`, stream: 'stdout', time: '2026-01-01T00:00:00.000000001Z' })}\n`;
const gen = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => line(`l${from + i}`)).join('');

async function until(cond: () => boolean, what: string, t: Tailer): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    t.wake();
    await new Promise((r) => setTimeout(r, 5));
  }
}

function start(file: string, checkpoint?: Checkpoint, chunkBytes = 4096) {
  const got: LogRecord[] = [];
  const drops: DropReason[] = [];
  const t = new Tailer({
    key: 'c',
    path: file,
    resource: { key: 'c', attributes: {} },
    sink: { waitForSpace: () => undefined, push: (r) => got.push(r) },
    stats: { lines: () => {}, drop: (r) => drops.push(r), truncated: () => {}, warn: () => {} },
    ...(checkpoint ? { checkpoint } : {}),
    startAt: 'beginning',
    maxLineBytes: 1 << 20,
    chunkBytes,
    partialFlushMs: 60_000,
    pollMs: 5,
    watch: false,
  });
  tailers.push(t);
  t.start();
  return { t, got, drops, bodies: () => got.map((r) => r.body.toString()) };
}

function fp(content: string): { fp: string; fpLen: number } {
  const head = Buffer.from(content).subarray(0, FP_LEN);
  return { fp: createHash('sha1').update(head).digest('hex').slice(0, 20), fpLen: head.length };
}

describe('tailer: compressed generations', () => {
  it.each([4096, 256 * 1024])(
    'resumes inside a generation compressed meanwhile and reads every newer one (read size %i)',
    async (chunk) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-gz-'));
      dirs.push(dir);
      const live = path.join(dir, 'c-json.log');
      // Oldest first: .3.gz (read before the stop), .2.gz (checkpoint inside), .1.gz, .1 is
      // being compressed (both exist: the plain one wins), live.
      const g3 = gen(0, 500);
      const g2 = gen(500, 3000);
      const g1 = gen(3500, 2000);
      const g1b = gen(5500, 10);
      const g0 = gen(5510, 7);
      writeFileSync(`${live}.4.gz`, gzipSync(g3));
      writeFileSync(`${live}.3.gz`, gzipSync(g2));
      writeFileSync(`${live}.2.gz`, gzipSync(g1));
      writeFileSync(`${live}.1`, g1b);
      writeFileSync(`${live}.1.gz`, gzipSync(g1b).subarray(0, 20)); // half-written by Docker
      writeFileSync(live, g0);
      // Delivered up to line 1700 (inside g2), taken when g2 was still the plain live file.
      const offset = Buffer.byteLength(gen(500, 1200));
      const cp: Checkpoint = { path: live, dev: 1, ino: 424242, ...fp(g2), offset };
      const h = start(live, cp, chunk);
      const want = Array.from({ length: 5517 - 1700 }, (_, i) => `l${1700 + i}`);
      await until(() => h.got.length >= want.length, 'every line after the checkpoint', h.t);
      await new Promise((r) => setTimeout(r, 50));
      expect(h.bodies()).toEqual(want);
      expect(h.drops).toEqual([]);
      expect(h.t.bytesBehind()).toBe(0);
      expect(statSync(live).size).toBe(Buffer.byteLength(g0));
      expect(readFileSync(live, 'utf8')).toBe(g0);
    },
  );

  it('a checkpoint whose generation is neither plain nor compressed any more is still rotated_away', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-gz-'));
    dirs.push(dir);
    const live = path.join(dir, 'c-json.log');
    writeFileSync(`${live}.1.gz`, gzipSync(gen(0, 3)));
    writeFileSync(live, gen(3, 2));
    const h = start(live, { path: live, dev: 1, ino: 7, ...fp(gen(100, 50)), offset: 10 });
    await until(() => h.got.length >= 5, 'the lines present', h.t);
    expect(h.bodies()).toEqual(['l0', 'l1', 'l2', 'l3', 'l4']);
    expect(h.drops).toEqual(['rotated_away']);
  });
});
