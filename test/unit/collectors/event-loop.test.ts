import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  eventLoopLagRegistry,
  mainThreadSchedReader,
  lagSeconds,
  replacesFamily,
} from '../../../src/collectors/event-loop.js';
import { omitFamilies } from '../../../src/exporters/prometheus.js';

function value(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  if (!line) throw new Error(`${name} missing in:\n${text}`);
  return Number(line.slice(name.length + 1));
}

describe('event-loop lag', () => {
  it('subtracts the sampling resolution (an idle 1 s sampler reads ~0, not ~1)', () => {
    const idle = {
      count: 60,
      min: 1_000_050_000,
      max: 1_003_000_000,
      mean: 1_000_400_000,
      stddev: 300_000,
      percentile: (p: number) => (p === 99 ? 1_002_000_000 : 1_000_200_000),
    };
    const lag = lagSeconds(idle, 1000);
    expect(lag?.p50).toBeCloseTo(0.0002, 9);
    expect(lag?.p99).toBeCloseTo(0.002, 9);
    expect(lag?.min).toBeCloseTo(0.00005, 9);
    expect(lag?.max).toBeCloseTo(0.003, 9);
    expect(lag?.stddev).toBeCloseTo(0.0003, 9);
    // a timer that fired early by scheduling noise is no negative lag
    expect(lagSeconds({ ...idle, min: 999_000_000 }, 1000)?.min).toBe(0);
    // nothing sampled: no figures (the registry keeps the last ones)
    expect(lagSeconds({ ...idle, count: 0 }, 1000)).toBeUndefined();
  });

  it('replaces exactly the histogram families of prom-client', () => {
    const text = [
      '# HELP nodejs_eventloop_lag_seconds x',
      '# TYPE nodejs_eventloop_lag_seconds gauge',
      'nodejs_eventloop_lag_seconds 0.001',
      '# HELP nodejs_eventloop_lag_p50_seconds x',
      '# TYPE nodejs_eventloop_lag_p50_seconds gauge',
      'nodejs_eventloop_lag_p50_seconds 1.0001',
      '',
    ].join('\n');
    const kept = omitFamilies(text, replacesFamily);
    expect(kept).toContain('nodejs_eventloop_lag_seconds 0.001');
    expect(kept).not.toContain('p50');
  });

  it('reports a blocked loop as its block, not as block + resolution', async () => {
    // a window without a stall of 0.1 s before the block (a loaded host can pause this process:
    // then a fresh registry and another 100 ms, so that the block is what the figure shows)
    let registry = eventLoopLagRegistry(20, 10_000);
    for (let tries = 1; ; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      const before = await registry.metrics();
      if (value(before, 'nodejs_eventloop_lag_max_seconds') < 0.1) break;
      if (tries === 50) throw new Error('no 100 ms without a 0.1 s stall in 50 tries');
      registry = eventLoopLagRegistry(20, 10_000);
    }
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // block the event loop for 150 ms
    }
    await new Promise((r) => setTimeout(r, 60));
    const text = await registry.metrics();
    const max = value(text, 'nodejs_eventloop_lag_max_seconds');
    expect(max).toBeGreaterThanOrEqual(0.1);
    expect(max).toBeLessThan(0.15 + 0.5); // the 20 ms resolution is not in it twice over
    expect(value(text, 'nodejs_eventloop_lag_min_seconds')).toBeLessThan(max);
    // reading does not reset: a second scraper sees the same window
    expect(value(await registry.metrics(), 'nodejs_eventloop_lag_max_seconds')).toBe(max);
  });

  it('logs when a late tick fired and how late it was; a block of a second or more is a warning', async () => {
    const records: Array<{ level: string; obj: Record<string, unknown>; msg: string; at: number }> =
      [];
    const log = {
      debug: (obj: Record<string, unknown>, msg: string) =>
        records.push({ level: 'debug', obj, msg, at: Date.now() }),
      warn: (obj: Record<string, unknown>, msg: string) =>
        records.push({ level: 'warn', obj, msg, at: Date.now() }),
    } as unknown as NonNullable<Parameters<typeof eventLoopLagRegistry>[2]>['log'];
    const stop = new AbortController();
    onTestFinished(() => stop.abort());
    eventLoopLagRegistry(20, 10_000, { log, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 100));
    records.length = 0; // whatever this process's start-up cost
    const blocked = (ms: number): number => {
      const from = Date.now();
      while (Date.now() < from + ms) {
        // block the event loop
      }
      return from;
    };
    const from = blocked(150);
    await new Promise((r) => setTimeout(r, 60));
    // the record's time is the end of the block; minus late_ms, its start (a stalled host can add
    // late ticks of its own: the block's is the one that began when it did)
    const late = records.filter(
      (r) =>
        r.level === 'debug' &&
        Number(r.obj.late_ms) >= 100 &&
        Math.abs(r.at - Number(r.obj.late_ms) - from) < 40,
    );
    expect(late, JSON.stringify(records)).toHaveLength(1);
    // the busy loop was the main thread's own: on a CPU, or runnable and waiting for one (minus
    // what a hypervisor stole)
    // since the previous tick (20 ms + its lateness before), not since the start
    const [block] = late as [(typeof records)[number]];
    const thread = Number(block.obj.cpu_ms) + Number(block.obj.wait_ms);
    expect(thread).toBeGreaterThan(75);
    expect(thread).toBeLessThan(Number(block.obj.late_ms) + 20 + 50);
    expect(records.filter((r) => r.level === 'warn')).toHaveLength(0);
    // a second-long block warns once; the next one within the minute is counted, not logged
    blocked(1050);
    await new Promise((r) => setTimeout(r, 60));
    blocked(1050);
    await new Promise((r) => setTimeout(r, 60));
    const warns = records.filter((r) => r.level === 'warn');
    expect(warns).toHaveLength(1);
    expect((warns[0] as (typeof records)[number]).msg).toMatch(
      /event loop blocked: a 20 ms timer fired \d+ ms late; since the previous tick the main thread ran \d+ ms and waited \d+ ms for a CPU/,
    );
    expect(
      records.filter((r) => r.level === 'debug' && Number(r.obj.late_ms) >= 1000).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it("logs the counters' change since the previous tick: cpu_ms from the first field, wait_ms from the second", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-sched-'));
    const stop = new AbortController();
    try {
      const file = path.join(dir, 'schedstat');
      writeFileSync(file, '1000000 2000000 1\n');
      const sched = mainThreadSchedReader(file);
      const records: Array<Record<string, unknown>> = [];
      const log = {
        debug: (obj: Record<string, unknown>) => records.push(obj),
        warn: () => undefined,
      } as unknown as NonNullable<Parameters<typeof eventLoopLagRegistry>[2]>['log'];
      eventLoopLagRegistry(20, 10_000, { log, sched, signal: stop.signal });
      await new Promise((r) => setTimeout(r, 100));
      records.length = 0;
      // the thread ran 30.5 ms and waited 7.25 ms more, then the loop is held for 100 ms
      writeFileSync(file, '31500000 9250000 2\n');
      const from = Date.now();
      while (Date.now() < from + 100) {
        // block the event loop
      }
      await new Promise((r) => setTimeout(r, 60));
      const late = records.filter((r) => Number(r.late_ms) >= 60);
      expect(late[0], JSON.stringify(records)).toMatchObject({ cpu_ms: 30.5, wait_ms: 7.3 });
      // ticks after it: the counters did not move
      const after = records.slice(records.indexOf(late[0] as Record<string, unknown>) + 1);
      for (const r of after) expect(r).toMatchObject({ cpu_ms: 0, wait_ms: 0 });
      stop.abort();
      // stopped: the descriptor is closed, nothing is read any more
      expect(sched()).toBeUndefined();
    } finally {
      stop.abort();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the main thread's time on a CPU and waiting for one from schedstat; none without the file", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-sched-'));
    try {
      const file = path.join(dir, 'schedstat');
      writeFileSync(file, '1234567 89000000 42\n');
      const read = mainThreadSchedReader(file);
      expect(read()).toEqual({ runNs: 1234567, waitNs: 89000000 });
      writeFileSync(file, '2234567 99000000 43\n');
      expect(read()).toEqual({ runNs: 2234567, waitNs: 99000000 });
      expect(mainThreadSchedReader(path.join(dir, 'missing'))()).toBeUndefined();
      writeFileSync(file, 'garbage\n');
      const bad = mainThreadSchedReader(file);
      expect(bad()).toBeUndefined();
      writeFileSync(file, '1 2 3\n');
      expect(bad(), 'not tried again after a bad read').toBeUndefined();
      writeFileSync(file, '0 0 0\n');
      expect(mainThreadSchedReader(file)(), 'a kernel that does not count').toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // this process's own main thread (Linux): it has run, and the counters only grow
    const own = mainThreadSchedReader();
    const a = own();
    expect(a?.runNs).toBeGreaterThan(0);
    expect(own()?.runNs).toBeGreaterThanOrEqual(a?.runNs ?? Infinity);
  });
});
