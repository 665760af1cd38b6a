/**
 * OOM kills per container, fed by two sources without double counting:
 * the daemon's `oom` events and the cgroup's own counter (`memory.events` oom_kill on v2,
 * `memory.oom_control` oom_kill on v1). Both describe the same kills of one run (one cgroup
 * lifetime), so within a run the count is the larger of the two; runs add up.
 *
 * Like container_restarts_total, the counter only counts kills the agent observed: for a run
 * that started before the agent did, the cgroup's counter at the first read is the baseline
 * (otherwise an agent restart would count old kills again and fire the OOM alert anew).
 */
export class OomTracker {
  private readonly perContainer = new Map<
    string,
    { base: number; runStartedAt: number; events: number; cgroup: number; baseline?: number }
  >();
  private readonly agentStartedAt: number;

  constructor(now: () => number = Date.now) {
    this.agentStartedAt = now();
  }

  /** Runs that began while the agent watched start from 0; older ones from their first read. */
  private baselineFor(runStartedAt: number): number | undefined {
    return runStartedAt !== 0 && runStartedAt >= this.agentStartedAt ? 0 : undefined;
  }

  private entry(id: string, runStartedAt: number) {
    let e = this.perContainer.get(id);
    if (!e) {
      e = { base: 0, runStartedAt, events: 0, cgroup: 0, baseline: this.baselineFor(runStartedAt) };
      this.perContainer.set(id, e);
    } else if (runStartedAt !== 0 && e.runStartedAt !== runStartedAt) {
      // a new run (new cgroup): close the previous run's count
      e.base += Math.max(e.events, e.cgroup);
      e.events = 0;
      e.cgroup = 0;
      e.runStartedAt = runStartedAt;
      e.baseline = this.baselineFor(runStartedAt);
    }
    return e;
  }

  /** A daemon `oom` event for the container's run that started at runStartedAt (ms). */
  noteEvent(id: string, runStartedAt: number): void {
    this.entry(id, runStartedAt).events += 1;
  }

  /** The cgroup's cumulative oom_kill counter as read now for the run that started at runStartedAt. */
  noteCgroup(id: string, runStartedAt: number, count: number): void {
    const e = this.entry(id, runStartedAt);
    e.baseline ??= count;
    const observed = count - e.baseline;
    if (observed > e.cgroup) e.cgroup = observed;
  }

  /** Total OOM kills observed for the container since the agent started. */
  total(id: string): number {
    const e = this.perContainer.get(id);
    return e ? e.base + Math.max(e.events, e.cgroup) : 0;
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
