/**
 * The status feature: samples CPU and memory into the usage ring and assembles the read-only
 * sources of the status page from the parts of the agent (which hands them over: agent.ts is the
 * composition root). The routes themselves are in routes.ts.
 */
import type { Component, ComponentHealth } from '../../component.js';
import { OnceLogger, type Logger } from '../../util/logger.js';
import { UsageRing, type UsageSample } from './ring.js';

export { statusRoutes } from './routes.js';
export type { StatusSources } from './model.js';

export interface UsageSamplerOptions {
  ring: UsageRing;
  /**
   * CPU and memory of every running container, and when they were read (ms); may reuse a
   * collection younger than maxAgeMs (a scrape's).
   */
  sample: (maxAgeMs: number) => Promise<{ at: number; containers: UsageSample[] }>;
  intervalMs: number;
  logger: Logger;
}

/** Fills the usage ring every interval. Never throws: a failed round is logged once and skipped. */
export class UsageSampler implements Component {
  readonly name = 'status';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastError: string | undefined;
  private lastAt = 0;
  private readonly once: OnceLogger;

  constructor(private readonly o: UsageSamplerOptions) {
    this.once = new OnceLogger(o.logger.child({ component: 'status' }));
  }

  /** One sampling round (also used by tests and the benchmark). */
  async tick(): Promise<void> {
    try {
      // a collection younger than the interval is reused (usually a scrape's); the ring records
      // it at the time it was read, so rates stay right; one already recorded is not again
      const { at, containers } = await this.o.sample(this.o.intervalMs);
      if (at > this.lastAt) this.o.ring.record(at, containers);
      this.lastAt = Math.max(this.lastAt, at);
      this.lastError = undefined;
      this.once.reset('sample');
    } catch (err) {
      this.lastError = (err as Error).message;
      this.once.warn(
        'sample',
        { err: this.lastError },
        'Sampling container CPU and memory for the status page failed; the charts have a gap.',
      );
    }
  }

  start(): Promise<void> {
    if (this.timer) return Promise.resolve();
    this.running = this.tick();
    this.timer = setInterval(() => {
      this.running ??= this.tick().finally(() => {
        this.running = undefined;
      });
    }, this.o.intervalMs);
    this.timer.unref();
    const first = this.running;
    void first.finally(() => {
      if (this.running === first) this.running = undefined;
    });
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  health(): ComponentHealth {
    return this.lastError
      ? { ok: false, detail: `usage sampling failed: ${this.lastError}` }
      : { ok: true, detail: `${this.o.ring.size} containers sampled` };
  }
}

/** Slots of the ring for a history window sampled every interval. */
export function ringSlots(historyMinutes: number, sampleIntervalSeconds: number): number {
  return Math.max(2, Math.min(10_000, Math.ceil((historyMinutes * 60) / sampleIntervalSeconds)));
}
