/**
 * CPU and memory of every container over the last minutes, for the status page's container view.
 *
 * Bounded by construction: one shared ring of sample times, and per container two Float32Array
 * rings of the same length (CPU in cores, memory working set in bytes; float32 keeps 7 significant
 * digits, plenty for a chart). At the defaults (15 minutes every 15 s = 60 slots) a container
 * costs 2 × 60 × 4 = 480 bytes of samples plus ~150 bytes of bookkeeping: ~0.6 MB for 1,000
 * containers. A container that disappears from the samples is forgotten after one full window.
 */

export interface UsageSample {
  id: string;
  /** Cumulative CPU time of the container's cgroup, in seconds. */
  cpuSeconds: number;
  /** Memory working set in bytes. */
  memoryBytes: number;
}

export interface UsageHistory {
  /** Sample times in ms since the epoch, oldest first. */
  times: number[];
  /** CPU in cores over the interval ending at each time (null: no sample then). */
  cpuCores: Array<number | null>;
  memoryBytes: Array<number | null>;
}

interface Series {
  cpu: Float32Array;
  mem: Float32Array;
  lastCpuSeconds: number;
  lastAt: number;
  /** Tick of the last sample, to forget containers not seen for a whole window. */
  seenTick: number;
}

/** A float32 read back as the 6 significant digits it holds (0.2, not 0.20000000298…). */
function value(x: number): number | null {
  return Number.isNaN(x) ? null : Number(x.toPrecision(6));
}

/** Bytes as held (float32: exact below 16 MiB, within 1 in 10 million above). */
function bytesValue(x: number): number | null {
  return Number.isNaN(x) ? null : Math.round(x);
}

export class UsageRing {
  readonly slots: number;
  private readonly times: Float64Array;
  private readonly series = new Map<string, Series>();
  /** Ticks recorded so far; the newest is at (tick - 1) % slots. */
  private tick = 0;

  constructor(slots: number) {
    if (!Number.isInteger(slots) || slots < 2 || slots > 10_000)
      throw new Error(`usage ring: slots must be an integer from 2 to 10000, got ${slots}`);
    this.slots = slots;
    this.times = new Float64Array(slots).fill(NaN);
  }

  /** Containers with a history. */
  get size(): number {
    return this.series.size;
  }

  /** Bytes of typed arrays held (times + two rings per container). */
  bytes(): number {
    return this.times.byteLength + this.series.size * this.slots * 8;
  }

  /** Records one sampling round taken at `at` (ms). */
  record(at: number, samples: Iterable<UsageSample>): void {
    const slot = this.tick % this.slots;
    this.times[slot] = at;
    const tick = this.tick;
    for (const s of samples) {
      let r = this.series.get(s.id);
      if (!r) {
        r = {
          cpu: new Float32Array(this.slots).fill(NaN),
          mem: new Float32Array(this.slots).fill(NaN),
          lastCpuSeconds: NaN,
          lastAt: NaN,
          seenTick: tick,
        };
        this.series.set(s.id, r);
      }
      const dt = (at - r.lastAt) / 1000;
      const dCpu = s.cpuSeconds - r.lastCpuSeconds;
      // a counter that went down is a new cgroup (restart): no rate for this interval
      r.cpu[slot] = dt > 0 && dCpu >= 0 ? dCpu / dt : NaN;
      r.mem[slot] = s.memoryBytes;
      r.lastCpuSeconds = s.cpuSeconds;
      r.lastAt = at;
      r.seenTick = tick;
    }
    this.tick++;
    for (const [id, r] of this.series) {
      if (r.seenTick !== tick) {
        r.cpu[slot] = NaN;
        r.mem[slot] = NaN;
        if (this.tick - r.seenTick > this.slots) this.series.delete(id);
      }
    }
  }

  /** Latest CPU (cores) and memory of a container, when its last round had them. */
  latest(id: string): { cpuCores: number | null; memoryBytes: number | null } | undefined {
    const r = this.series.get(id);
    if (!r || this.tick === 0) return undefined;
    const slot = (this.tick - 1) % this.slots;
    return {
      cpuCores: value(r.cpu[slot] as number),
      memoryBytes: bytesValue(r.mem[slot] as number),
    };
  }

  /** The window of one container, oldest first; undefined when it has none. */
  history(id: string): UsageHistory | undefined {
    const r = this.series.get(id);
    if (!r) return undefined;
    const out: UsageHistory = { times: [], cpuCores: [], memoryBytes: [] };
    const n = Math.min(this.tick, this.slots);
    for (let i = this.tick - n; i < this.tick; i++) {
      const slot = i % this.slots;
      const t = this.times[slot] as number;
      if (Number.isNaN(t)) continue;
      out.times.push(t);
      out.cpuCores.push(value(r.cpu[slot] as number));
      out.memoryBytes.push(bytesValue(r.mem[slot] as number));
    }
    return out;
  }
}
