/**
 * OOM kills per container, fed by two sources without double counting:
 * the daemon's `oom` events, the cgroup's own counter (`memory.events` oom_kill on v2,
 * `memory.oom_control` oom_kill on v1). Both describe the same kills of one run (one cgroup
 * lifetime); runs add up.
 *
 * The cgroup counter is the kernel's count of kills and is exact. The daemon's `oom` events are
 * not a count of kills: on cgroup v1 dockerd emits one per OOM *notification* of the memory
 * cgroup (the eventfd of memory.oom_control), and a loaded host raises several per kill
 * (measured: kernel oom_kill 1, events 5 and 10). So once this host has shown a cgroup counter,
 * events only say "at least one kill in this run" — that covers a run whose cgroup vanished (its
 * only process was killed) before the next read. Without a cgroup counter (kernels before 4.13
 * have no oom_kill line on v1) each event counts as one kill.
 *
 * Like container_restarts_total, the counter only counts kills the agent observed: for a run
 * that started before the agent did, the cgroup's counter at the first read is the baseline
 * (otherwise an agent restart would count old kills again and fire the OOM alert anew).
 */
interface OomRun {
  /** Kills of the closed runs. */
  base: number;
  runStartedAt: number;
  /** Daemon `oom` events of this run. */
  events: number;
  /** Kills of this run by the cgroup counter (above the baseline). */
  cgroup: number;
  /** Docker's inspect says the run was OOM-killed (State.OOMKilled): at least one kill. */
  verdict: boolean;
  baseline?: number;
  /** The run closed last (its counts are in `base`): a late `oom` event for it merges there. */
  prev?: { runStartedAt: number; events: number; cgroup: number; verdict: boolean };
}

export class OomTracker {
  private readonly perContainer = new Map<string, OomRun>();
  private readonly agentStartedAt: number;
  /** Set by the first cgroup reading: from then on the cgroup counter is the count. */
  private cgroupCounts = false;

  constructor(now: () => number = Date.now) {
    this.agentStartedAt = now();
  }

  /** Runs that began while the agent watched start from 0; older ones from their first read. */
  private baselineFor(runStartedAt: number): number | undefined {
    return runStartedAt !== 0 && runStartedAt >= this.agentStartedAt ? 0 : undefined;
  }

  private entry(id: string, runStartedAt: number): OomRun {
    let e = this.perContainer.get(id);
    if (!e) {
      e = {
        base: 0,
        runStartedAt,
        events: 0,
        cgroup: 0,
        verdict: false,
        baseline: this.baselineFor(runStartedAt),
      };
      this.perContainer.set(id, e);
    } else if (runStartedAt !== 0 && e.runStartedAt !== runStartedAt) {
      // a new run (new cgroup): close the previous run's count
      e.base += this.runCount(e);
      e.prev = {
        runStartedAt: e.runStartedAt,
        events: e.events,
        cgroup: e.cgroup,
        verdict: e.verdict,
      };
      e.events = 0;
      e.cgroup = 0;
      e.verdict = false;
      e.runStartedAt = runStartedAt;
      e.baseline = this.baselineFor(runStartedAt);
    }
    return e;
  }

  /** A daemon `oom` event for the container's run that started at runStartedAt (ms). */
  noteEvent(id: string, runStartedAt: number): void {
    const e = this.perContainer.get(id);
    const prev = e?.prev;
    if (e && prev && runStartedAt !== 0 && prev.runStartedAt === runStartedAt) {
      // Docker's late verdict for the run before the current one (sent after the next run
      // started): merged with what that run already counted, the current run untouched
      const before = this.runCount(prev);
      prev.events += 1;
      e.base += this.runCount(prev) - before;
      return;
    }
    this.entry(id, runStartedAt).events += 1;
  }

  /**
   * Docker's inspect of the run that started at runStartedAt says it was OOM-killed: at least one
   * kill, also when its `oom` event never came (containerd, on a loaded host, may not send one
   * when the cgroup is gone first) and the cgroup vanished before a read. Only for runs that began
   * while the agent watched (like the rest of the counter); idempotent.
   */
  noteVerdict(id: string, runStartedAt: number): void {
    if (runStartedAt === 0 || runStartedAt < this.agentStartedAt) return;
    const e = this.perContainer.get(id);
    const prev = e?.prev;
    if (e && prev && prev.runStartedAt === runStartedAt) {
      const before = this.runCount(prev);
      prev.verdict = true;
      e.base += this.runCount(prev) - before;
      return;
    }
    if (e && runStartedAt < e.runStartedAt) return; // older than the runs kept: already closed
    this.entry(id, runStartedAt).verdict = true;
  }

  /** The cgroup's cumulative oom_kill counter as read now for the run that started at runStartedAt. */
  noteCgroup(id: string, runStartedAt: number, count: number): void {
    this.cgroupCounts = true;
    const e = this.entry(id, runStartedAt);
    e.baseline ??= count;
    const observed = count - e.baseline;
    if (observed > e.cgroup) e.cgroup = observed;
  }

  /** Total OOM kills observed for the container since the agent started. */
  total(id: string): number {
    const e = this.perContainer.get(id);
    return e ? e.base + this.runCount(e) : 0;
  }

  /** Kills of the current run: the cgroup's count; events as "at least one" (see the header). */
  private runCount(e: { events: number; cgroup: number; verdict: boolean }): number {
    const fromEvents = this.cgroupCounts ? Math.min(e.events, 1) : e.events;
    return Math.max(fromEvents, e.cgroup, e.verdict ? 1 : 0);
  }

  has(id: string): boolean {
    return this.perContainer.has(id);
  }

  /** Ensures a container has a series (at 0) from the moment it is known. */
  track(id: string, runStartedAt: number): void {
    this.entry(id, runStartedAt);
  }

  delete(id: string): void {
    this.perContainer.delete(id);
  }

  ids(): string[] {
    return [...this.perContainer.keys()];
  }
}
