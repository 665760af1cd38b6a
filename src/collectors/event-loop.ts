/**
 * Event-loop lag that means what it says. prom-client's `nodejs_eventloop_lag_{min,max,mean,
 * stddev,p50,p90,p99}_seconds` come from `monitorEventLoopDelay`, whose samples are the time
 * between two firings of a timer of `resolution` ms: the resolution itself plus the lag. The
 * agent samples once a second (100 wake-ups a second cost ~1 % of a core on an idle host), so
 * those gauges read about 1.0 on an idle agent and an alert on them fires forever.
 *
 * This module serves the same families from its own once-a-second sampler that records how late
 * each tick is, so the interval is not in the figures: an idle agent reports well under a
 * millisecond, a loop blocked for 200 ms shows about 0.2. The agent drops prom-client's versions
 * ({@link replacesFamily}); the cost is one timer callback a second.
 * Sampling once a second sees every block that delays a timer firing, not shorter blocks between
 * two firings: nodejs_eventloop_lag_seconds (prom-client's, measured at each scrape) stays.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { Gauge, Registry } from 'prom-client';
import type { Logger } from '../util/logger.js';

/** Sampling interval of the histogram (ms). */
export const EVENT_LOOP_RESOLUTION_MS = 1000;

const FAMILIES = {
  min: ['nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.'],
  max: ['nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.'],
  mean: ['nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.'],
  stddev: [
    'nodejs_eventloop_lag_stddev_seconds',
    'The standard deviation of the recorded event loop delays.',
  ],
  p50: [
    'nodejs_eventloop_lag_p50_seconds',
    'The 50th percentile of the recorded event loop delays.',
  ],
  p90: [
    'nodejs_eventloop_lag_p90_seconds',
    'The 90th percentile of the recorded event loop delays.',
  ],
  p99: [
    'nodejs_eventloop_lag_p99_seconds',
    'The 99th percentile of the recorded event loop delays.',
  ],
} as const;

const NAMES = new Set<string>(Object.values(FAMILIES).map(([name]) => name));

/** Whether prom-client's family of this name is replaced by this module's. */
export function replacesFamily(name: string): boolean {
  return NAMES.has(name);
}

/** Delay statistics of a histogram in seconds, the sampling resolution subtracted. */
export function lagSeconds(
  h: Pick<RecordableHistogram, 'min' | 'max' | 'mean' | 'stddev' | 'percentile' | 'count'>,
  resolutionMs: number,
): Record<keyof typeof FAMILIES, number> | undefined {
  if (h.count === 0) return undefined;
  const res = resolutionMs * 1e6;
  const lag = (ns: number): number => Math.max(0, ns - res) / 1e9;
  return {
    min: lag(h.min),
    max: lag(h.max),
    mean: lag(h.mean),
    stddev: h.stddev / 1e9, // a spread: the constant offset does not change it
    p50: lag(h.percentile(50)),
    p90: lag(h.percentile(90)),
    p99: lag(h.percentile(99)),
  };
}

/** Each figure covers the last one to two windows of ticks, whoever scrapes and how often. */
export const EVENT_LOOP_WINDOW_MS = 30_000;

/** A tick at least this late is logged at debug level (with when it fired and how late). */
export const EVENT_LOOP_DEBUG_LATE_MS = 20;
/** A tick at least this late is a warning (at most one a minute; the rest are counted in it). */
export const EVENT_LOOP_WARN_LATE_MS = 1000;
const WARN_EVERY_MS = 60_000;

/** Nanoseconds the main thread has run on a CPU, and waited runnable for one, since it started. */
export interface ThreadSched {
  runNs: number;
  waitNs: number;
}

/** One read of the counters (undefined when unavailable); `close` releases the descriptor. */
export type SchedReader = (() => ThreadSched | undefined) & { close: () => void };

/**
 * Reads this process's main-thread scheduler counters (`/proc/self/task/<pid>/schedstat`: time on
 * a CPU, time runnable but waiting for one) through one descriptor kept open: one pread a call.
 * Returns undefined where the file does not exist (not Linux, a kernel without schedstats); it is
 * then not tried again.
 */
export function mainThreadSchedReader(
  file = `/proc/self/task/${process.pid}/schedstat`,
): SchedReader {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Object.assign(() => undefined, { close: () => undefined });
  }
  const buf = Buffer.alloc(128);
  const read = (): ThreadSched | undefined => {
    if (fd === undefined) return undefined;
    try {
      const n = readSync(fd, buf, 0, buf.length, 0);
      const [run, wait] = buf.toString('latin1', 0, n).split(' ');
      const runNs = Number(run);
      const waitNs = Number(wait);
      // a thread that is reading has run: zeros are a kernel that does not count
      if (Number.isFinite(runNs) && Number.isFinite(waitNs) && runNs > 0) return { runNs, waitNs };
    } catch {
      // fall through: stop reading
    }
    close();
    return undefined;
  };
  const close = (): void => {
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    fd = undefined;
  };
  return Object.assign(read, { close });
}

/**
 * The corrected lag families in their own registry. A timer fires every `resolutionMs`; each
 * firing records how late it is (time since the previous firing minus the interval). Ticks go
 * into two histograms that rotate every `windowMs`; a scrape reports both together and resets
 * nothing, so several scrapers (or a curl next to Prometheus) do not steal each other's samples.
 * (monitorEventLoopDelay also forgets the first interval after each reset, so a block right after
 * a scrape would be lost.)
 *
 * With a logger, a tick at least {@link EVENT_LOOP_DEBUG_LATE_MS} late is logged at debug level
 * (`late_ms`; the record's time is when the tick fired, so the block ended then and began at least
 * `late_ms` before), and one at least {@link EVENT_LOOP_WARN_LATE_MS} late is a warning: the
 * figure says that the loop was late, the log says when. On Linux both records also say what the
 * main thread did since the previous tick (`cpu_ms` on a CPU, `wait_ms` runnable but waiting for
 * one; both cover the whole interval, not only its late part): a tick late by about its
 * `wait_ms` or less is a host short of CPU, one whose `cpu_ms` is about its lateness or more is
 * likely the agent's own work, and one late by far more than either was blocked (a synchronous
 * call, swapping, a stopped process, or the hypervisor's steal).
 */
export function eventLoopLagRegistry(
  resolutionMs = EVENT_LOOP_RESOLUTION_MS,
  windowMs = EVENT_LOOP_WINDOW_MS,
  opts: {
    log?: Pick<Logger, 'debug' | 'warn'>;
    /** the main thread's counters (default: its schedstat, read only with a logger) */
    sched?: SchedReader;
    /** stops the sampler and closes the schedstat descriptor */
    signal?: AbortSignal;
  } = {},
): Registry {
  const { log, signal } = opts;
  const sched = opts.sched ?? (log ? mainThreadSchedReader() : undefined);
  const registry = new Registry();
  let current = createHistogram();
  let previous = createHistogram();
  let prev = process.hrtime.bigint();
  let rotated = prev;
  const interval = BigInt(resolutionMs) * 1_000_000n;
  const window = BigInt(windowMs) * 1_000_000n;
  let warnedAt = -Infinity;
  let unwarned = 0;
  let prevSched = sched?.();
  const ms = (ns: number): number => Math.round(ns / 1e5) / 10;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    const late = now - prev - interval;
    prev = now;
    const lateMs = Number(late) / 1e6;
    const s = prevSched && sched?.();
    const since =
      s && prevSched
        ? { cpu_ms: ms(s.runNs - prevSched.runNs), wait_ms: ms(s.waitNs - prevSched.waitNs) }
        : undefined;
    prevSched = s;
    if (log && lateMs >= EVENT_LOOP_DEBUG_LATE_MS) {
      const fields = { late_ms: Math.round(lateMs * 10) / 10, interval_ms: resolutionMs, ...since };
      log.debug(fields, 'event loop tick late');
      if (lateMs >= EVENT_LOOP_WARN_LATE_MS) {
        const at = Number(now / 1_000_000n);
        if (at - warnedAt >= WARN_EVERY_MS) {
          const thread = since
            ? `; since the previous tick the main thread ran ${Math.round(since.cpu_ms)} ms and ` +
              `waited ${Math.round(since.wait_ms)} ms for a CPU`
            : '';
          log.warn(
            { ...fields, late_ticks_not_logged: unwarned },
            `event loop blocked: a ${resolutionMs} ms timer fired ${Math.round(lateMs)} ms late` +
              `${thread} (CPU starved, swapping, or synchronous work; ` +
              'nodejs_eventloop_lag_max_seconds)',
          );
          warnedAt = at;
          unwarned = 0;
        } else unwarned++;
      }
    }
    if (now - rotated >= window) {
      previous = current;
      current = createHistogram();
      rotated = now;
    }
    current.record(late > 0n ? late : 1n); // the histogram takes values ≥ 1 (ns)
  }, resolutionMs).unref();
  signal?.addEventListener(
    'abort',
    () => {
      clearInterval(timer);
      sched?.close();
    },
    { once: true },
  );
  const gauges = {} as Record<keyof typeof FAMILIES, Gauge>;
  for (const [key, [name, help]] of Object.entries(FAMILIES) as Array<
    [keyof typeof FAMILIES, readonly [string, string]]
  >) {
    gauges[key] = new Gauge({
      name,
      help: `${help} Seconds: how late a timer firing every ${resolutionMs / 1000} s was, over the last ${windowMs / 1000}–${(2 * windowMs) / 1000} s.`,
      registers: [registry],
      // the first family's collect reads the histograms for all of them
      collect:
        key === 'min'
          ? () => {
              const both = createHistogram();
              both.add(previous);
              both.add(current);
              const lag = lagSeconds(both, 0);
              if (lag)
                for (const k of Object.keys(gauges) as Array<keyof typeof FAMILIES>)
                  gauges[k].set(lag[k]);
            }
          : undefined,
    });
  }
  return registry;
}
