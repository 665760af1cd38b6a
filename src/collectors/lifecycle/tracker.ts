/**
 * The lifecycle state machine: raw daemon events (fast, ordered) plus inventory snapshots
 * (inspect truth, and the only source after a reconnect) → per-container restart counts, last
 * exit, state, health, and finished runs (for spans). No I/O here; unit-testable.
 *
 * Restart counting rule (documented in the README):
 * - The counter of a container starts at 0 when the agent first sees it (at agent start or when
 *   it is created), whatever Docker's RestartCount says; a restart of the agent therefore looks
 *   like a counter reset to Prometheus and `increase()` shows no restart that did not happen.
 * - Every `start` of a container that has run before counts one restart: restart-policy
 *   restarts, `docker restart` (kill, die, stop, start — counted once, the `restart` event
 *   itself is ignored), and `docker stop` followed by `docker start`. The first start of a new
 *   container does not count.
 * - After a reconnect to the daemon, events may have been missed: the re-sync snapshot is
 *   compared with the last one; a changed StartedAt adds max(1, RestartCount delta) restarts,
 *   and start events replayed from before that StartedAt are not counted again.
 */
import {
  CONTAINER_STATES,
  type ContainerInfo,
  type ContainerState,
  type DockerEvent,
  type HealthState,
  type InventoryEvent,
} from '../../docker/types.js';
import { baseAction } from '../../docker/events.js';
import type { ContainerRun, RunEvent } from '../../exporters/otlp-traces.js';

/** The state set served: `removing` is shown as `exited`. */
export const STATE_SET = ['created', 'running', 'paused', 'restarting', 'exited', 'dead'] as const;
export const HEALTH_SET = ['none', 'starting', 'healthy', 'unhealthy'] as const;

const SIGNALS: Record<string, string> = {
  '1': 'SIGHUP',
  '2': 'SIGINT',
  '3': 'SIGQUIT',
  '6': 'SIGABRT',
  '9': 'SIGKILL',
  '10': 'SIGUSR1',
  '12': 'SIGUSR2',
  '13': 'SIGPIPE',
  '14': 'SIGALRM',
  '15': 'SIGTERM',
};

/** `9` / `KILL` / `SIGKILL` → `SIGKILL`. */
export function signalName(s: string | number | undefined): string | undefined {
  if (s === undefined || s === '') return undefined;
  const str = String(s).trim().toUpperCase();
  if (/^\d+$/.test(str)) return SIGNALS[str] ?? `SIG${str}`;
  return str.startsWith('SIG') ? str : `SIG${str}`;
}

/** Matching window between an event time and inspect's StartedAt of the same run. */
const MATCH_MS = 2000;

interface Run {
  startMs: number;
  /** StartedAt from inspect once matched (the key the OomTracker uses), else 0. */
  inspectStartedAt: number;
  events: RunEvent[];
  signal?: string;
  oom: boolean;
  attempt: number;
  /**
   * Opened by the inventory's first inspect, before any `start` event of the container was
   * handled: the next `start` event up to this run's StartedAt is this run's own (or an earlier
   * run's in a quick restart loop), never a restart of it.
   */
  openedByInspect?: boolean;
}

export interface LastExit {
  code: number;
  timeMs: number;
  oom: boolean;
  /** StartedAt (inspect, else the start event's time) of the run that ended; 0 = unknown. */
  runStartedAt: number;
}

/**
 * How long after a run's end Docker's OOM verdict for it is still taken. containerd reports a
 * cgroup OOM and the task's exit on separate paths, so on a busy host the `oom` event (and
 * inspect's `State.OOMKilled`) can come after `die`, seconds later.
 */
export const LATE_OOM_MS = 30_000;

/** The run that ended last, kept LATE_OOM_MS for a late OOM verdict. */
export interface EndedRun {
  span: ContainerRun;
  /** The span's events (the same array, writable). */
  events: RunEvent[];
  /** Its exit: the verdict marks the span only while this is still the container's last exit. */
  exit: LastExit;
  /** Its inspect StartedAt (the OomTracker's key), 0 if never matched. */
  startedAt: number;
}

export interface TrackedContainer {
  id: string;
  info?: ContainerInfo;
  restarts: number;
  hasRun: boolean;
  lastExit?: LastExit;
  state: ContainerState;
  health: HealthState;
  failingStreak: number;
  run?: Run;
  /**
   * The span data of the run that ended last, until the next run starts: a late OOM verdict is
   * added to it (the collector holds a SIGKILLed run's span a moment for it, see
   * OOM_VERDICT_HOLD_MS).
   */
  endedRun?: EndedRun;
  runs: number;
  /** StartedAt counted by a re-sync; replayed start events up to it are not counted again. */
  reconciledStartedAt: number;
  /** OOM events waiting for the run's inspect StartedAt. */
  pendingOom?: { approxStartMs: number; count: number };
  removedAt?: number;
  /** `docker exec` events of this container (execs created through the API; not health probes). */
  execs?: Record<ExecAction, number>;
  /** Ids of execs created and not yet ended (bounded; health probes never appear here). */
  openExecs?: Set<string>;
}

export const EXEC_ACTIONS = ['exec_create', 'exec_start', 'exec_die'] as const;
export type ExecAction = (typeof EXEC_ACTIONS)[number];
/** Exec ids remembered per container between create and die. */
const MAX_OPEN_EXECS = 256;
/** Exec events kept on one run span (a container exec'd into every few seconds would grow it without end). */
export const MAX_EXEC_SPAN_EVENTS = 128;

export interface TrackerHooks {
  /** A run finished (die). */
  runEnded?(run: ContainerRun, c: TrackedContainer): void;
  /** An `oom` event for the run that started at runStartedAt (inspect StartedAt, ms; 0 = unknown). */
  oomEvent?(id: string, runStartedAt: number): void;
  /** Docker's inspect says the run that started at runStartedAt ended OOM-killed. */
  oomVerdict?(id: string, runStartedAt: number): void;
  /** A container is known with its current run start (keeps an OOM series at 0). */
  track?(id: string, runStartedAt: number): void;
  /** The container's series are gone for good (after the grace). */
  forget?(id: string): void;
  imagePull?(): void;
  imageDelete?(): void;
}

export interface TrackerOptions {
  hooks?: TrackerHooks;
  removedGraceMs?: number;
  now?: () => number;
  /** Allowlisted labels to put on spans. */
  spanLabels?: (info: ContainerInfo) => Record<string, string>;
  /** Masks secrets in exec commands before they go on a span (the log redaction rules). */
  redact?: (s: string) => string;
}

function eventMs(ev: DockerEvent): number {
  if (ev.timeNano) return ev.timeNano / 1e6;
  if (ev.time) return ev.time * 1000;
  return Date.now();
}

export class LifecycleTracker {
  private readonly byId = new Map<string, TrackedContainer>();
  private readonly hooks: TrackerHooks;
  private readonly graceMs: number;
  private readonly now: () => number;
  private readonly spanLabels: (info: ContainerInfo) => Record<string, string>;
  private readonly redact: (s: string) => string;

  constructor(opts: TrackerOptions = {}) {
    this.redact = opts.redact ?? ((s) => s);
    this.hooks = opts.hooks ?? {};
    this.graceMs = opts.removedGraceMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.spanLabels = opts.spanLabels ?? (() => ({}));
  }

  containers(): TrackedContainer[] {
    return [...this.byId.values()];
  }

  get(id: string): TrackedContainer | undefined {
    return this.byId.get(id);
  }

  private tracked(id: string): TrackedContainer {
    let t = this.byId.get(id);
    if (!t) {
      t = {
        id,
        restarts: 0,
        hasRun: false,
        state: 'created',
        health: 'none',
        failingStreak: 0,
        runs: 0,
        reconciledStartedAt: 0,
      };
      this.byId.set(id, t);
    }
    return t;
  }

  // ---- raw daemon events ----
  onDockerEvent(ev: DockerEvent): void {
    const type = ev.Type ?? '';
    const action = ev.Action ?? '';
    const base = baseAction(action);
    if (type === 'image') {
      if (base === 'pull') this.hooks.imagePull?.();
      else if (base === 'delete') this.hooks.imageDelete?.();
      return;
    }
    if (type !== 'container') return;
    const id = ev.Actor?.ID;
    if (!id) return;
    const attrs = ev.Actor.Attributes ?? {};
    const t = this.byId.get(id);
    const ms = eventMs(ev);
    switch (base) {
      case 'create':
        this.tracked(id);
        return;
      case 'start': {
        const c = this.tracked(id);
        const replayed = c.reconciledStartedAt > 0 && ms <= c.reconciledStartedAt + MATCH_MS;
        if (!replayed && c.run?.openedByInspect && ms <= c.run.inspectStartedAt + MATCH_MS) {
          // the inspect landed before this event and already opened the run it describes
          c.run.openedByInspect = false;
          c.hasRun = true;
          c.removedAt = undefined;
          c.state = 'running';
          return;
        }
        if (c.hasRun && !replayed) c.restarts += 1;
        c.hasRun = true;
        c.removedAt = undefined;
        if (replayed && c.run) return; // the re-sync already opened this run
        this.flushPendingOom(c, 0);
        c.runs += 1;
        c.run = { startMs: ms, inspectStartedAt: 0, events: [], oom: false, attempt: c.runs };
        // the snapshot may already describe this run (inspect landed first)
        if (c.info && Math.abs(c.info.startedAt - ms) < MATCH_MS && c.info.startedAt <= ms + 50)
          c.run.inspectStartedAt = c.info.startedAt;
        c.state = 'running';
        return;
      }
      case 'die': {
        const c = this.tracked(id);
        const code = Number(attrs.exitCode ?? c.info?.exitCode ?? 0);
        this.endRun(c, ms, Number.isFinite(code) ? code : 0);
        c.state = 'exited';
        return;
      }
      case 'kill': {
        if (!t?.run) return;
        const sig = signalName(attrs.signal);
        t.run.signal = sig;
        t.run.events.push({ name: 'kill', timeMs: ms, attributes: sig ? { signal: sig } : {} });
        return;
      }
      case 'oom': {
        const c = this.tracked(id);
        if (this.isLateVerdict(c, ms)) {
          // the verdict for the run that just ended, sent after its `die` (and, with a restart
          // policy, after the next run's `start`)
          this.lateOom(c, ms);
          // counted for that run: its inspect StartedAt (with no run open, the snapshot's)
          const ended = c.endedRun;
          const own = ended && ended.exit === c.lastExit ? ended.startedAt : 0;
          this.hooks.oomEvent?.(id, own || (c.run ? 0 : (c.info?.startedAt ?? 0)));
          return;
        }
        const run = c.run;
        if (run) {
          run.oom = true;
          run.events.push({ name: 'oom', timeMs: ms });
        }
        let started = run?.inspectStartedAt ?? 0;
        if (!started && run && c.info && Math.abs(c.info.startedAt - run.startMs) < MATCH_MS)
          started = c.info.startedAt;
        if (!run && c.info) started = c.info.startedAt;
        if (started) this.hooks.oomEvent?.(id, started);
        else if (run) {
          const p = c.pendingOom ?? { approxStartMs: run.startMs, count: 0 };
          p.count += 1;
          c.pendingOom = p;
        } else this.hooks.oomEvent?.(id, 0);
        return;
      }
      case 'destroy':
        // also for containers the inventory never added (destroyed before their inspect
        // landed): start the grace so sweep() forgets them
        if (t && t.removedAt === undefined) {
          t.removedAt = this.now();
          t.run = undefined;
          t.pendingOom = undefined;
          t.endedRun = undefined;
        }
        return;
      case 'pause':
      case 'unpause':
        if (t) {
          t.state = base === 'pause' ? 'paused' : 'running';
          t.run?.events.push({ name: base, timeMs: ms });
        }
        return;
      case 'exec_create':
      case 'exec_start':
      case 'exec_die':
        if (t) this.onExec(t, base, ev, ms);
        return;
      case 'health_status': {
        const status = action.slice(action.indexOf(':') + 1).trim();
        if (!t || !['starting', 'healthy', 'unhealthy'].includes(status)) return;
        t.health = status as HealthState;
        t.run?.events.push({
          name: 'health_status',
          timeMs: ms,
          attributes: { 'container.health.status': status },
        });
        return;
      }
      default:
        return;
    }
  }

  /**
   * Counts an exec event and adds it to the run span. Health probes run as execs too: an
   * exec_create whose command is the container's health check command is not counted, and
   * start/die of an exec whose create was not counted are ignored (when the daemon sends no
   * execID at all, only creates are counted).
   */
  private onExec(c: TrackedContainer, base: ExecAction, ev: DockerEvent, ms: number): void {
    const attrs = ev.Actor.Attributes ?? {};
    const execId = attrs.execID;
    const open = (c.openExecs ??= new Set());
    if (base === 'exec_create') {
      if (isHealthProbe(c.info, ev.Action)) return;
      if (execId) {
        if (open.size >= MAX_OPEN_EXECS) {
          const oldest = open.values().next().value;
          if (oldest !== undefined) open.delete(oldest);
        }
        open.add(execId);
      }
    } else if (!execId || !open.has(execId)) return;
    else if (base === 'exec_die') open.delete(execId);
    const execs = (c.execs ??= { exec_create: 0, exec_start: 0, exec_die: 0 });
    execs[base] += 1;
    const run = c.run;
    if (!run) return;
    let n = 0;
    for (const e of run.events) if (e.name.startsWith('exec_')) n++;
    if (n >= MAX_EXEC_SPAN_EVENTS) return;
    const a: Record<string, string | number> = {};
    if (execId) a['container.exec.id'] = execId;
    if (base === 'exec_create') {
      const colon = ev.Action.indexOf(':');
      a['process.command_line'] = this.redact(colon >= 0 ? ev.Action.slice(colon + 1).trim() : '');
    }
    if (base === 'exec_die' && attrs.exitCode !== undefined) {
      const code = Number(attrs.exitCode);
      if (Number.isFinite(code)) a['process.exit.code'] = code;
    }
    run.events.push({ name: base, timeMs: ms, attributes: a });
  }

  private flushPendingOom(c: TrackedContainer, startedAt: number): void {
    const p = c.pendingOom;
    if (!p) return;
    c.pendingOom = undefined;
    for (let i = 0; i < p.count; i++) this.hooks.oomEvent?.(c.id, startedAt);
  }

  /**
   * An `oom` event at `ms` is Docker's late verdict for the run that ended last: with no run open,
   * one within [its end - MATCH_MS, its end + LATE_OOM_MS]; with a run open (a restart policy
   * started the next one), only when that run began under MATCH_MS before the event and the last
   * exit was a SIGKILL nobody sent through the API (137 without a `kill` event) not yet known as
   * an OOM: a heuristic, since the event does not say which run it is for (an OOM right at the
   * start of the next run is counted for the one before).
   */
  private isLateVerdict(c: TrackedContainer, ms: number): boolean {
    const last = c.lastExit;
    if (!last || ms < last.timeMs - MATCH_MS || ms > last.timeMs + LATE_OOM_MS) return false;
    const run = c.run;
    if (!run) return true;
    const ended = c.endedRun;
    return (
      ms - run.startMs < MATCH_MS &&
      !last.oom &&
      last.code === 137 &&
      ended?.exit === last &&
      !ended.events.some((e) => e.name === 'kill')
    );
  }

  /** Docker's OOM verdict for the run that ended last, after its end was handled. */
  private lateOom(c: TrackedContainer, ms: number): void {
    const last = c.lastExit;
    if (!last) return;
    last.oom = true;
    const r = c.endedRun;
    if (r && r.exit === last && !r.span.oomKilled) {
      r.span.oomKilled = true;
      r.events.push({ name: 'oom', timeMs: ms });
    }
  }

  private endRun(c: TrackedContainer, endMs: number, code: number): void {
    const run = c.run;
    const oom = run?.oom ?? false;
    c.lastExit = {
      code,
      timeMs: endMs,
      oom,
      runStartedAt: run ? run.inspectStartedAt || run.startMs : 0,
    };
    if (!run) return;
    c.run = undefined;
    const info = c.info;
    const signal = run.signal ?? (code > 128 ? signalName(code - 128) : undefined);
    const ended: ContainerRun = {
      containerId: c.id,
      containerName: info?.name ?? c.id.slice(0, 12),
      image: info?.image ?? '',
      labels: info ? this.spanLabels(info) : {},
      startMs: run.startMs,
      endMs,
      exitCode: code,
      signal: code === 0 ? undefined : signal,
      oomKilled: oom,
      attempt: run.attempt,
      events: run.events,
    };
    c.endedRun = {
      span: ended,
      events: run.events,
      exit: c.lastExit,
      startedAt: run.inspectStartedAt,
    };
    this.hooks.runEnded?.(ended, c);
  }

  // ---- inventory snapshots ----
  /** `resync` is true while the inventory re-lists (initial sync or after a reconnect). */
  onInventory(ev: InventoryEvent, resync: boolean): void {
    const info = ev.container;
    if (ev.type === 'removed') {
      const c = this.byId.get(info.id);
      if (c) {
        c.removedAt = this.now();
        c.run = undefined; // never give a run a fake end
        c.endedRun = undefined;
      }
      return;
    }
    const existing = this.byId.get(info.id);
    const c = this.tracked(info.id);
    const prevInfo = ev.type === 'updated' ? ev.previous : existing?.info;
    c.info = info;
    c.removedAt = undefined;
    c.state = info.state === 'removing' ? 'exited' : info.state;
    c.health = info.health;
    c.failingStreak = info.healthFailingStreak;

    const first = !existing || (!existing.info && !existing.hasRun);
    if (first && !existing?.run) {
      // baseline: the counter starts at 0; a running container's run is picked up with its real start
      const startSeen = c.hasRun;
      c.hasRun = c.hasRun || info.startedAt > 0;
      if (isLive(info.state) && info.startedAt > 0 && !c.run) {
        c.runs += 1;
        c.run = {
          startMs: info.startedAt,
          inspectStartedAt: info.startedAt,
          events: [],
          oom: false,
          attempt: c.runs,
          openedByInspect: !startSeen,
        };
      }
      if (!isLive(info.state) && info.finishedAt > 0 && !c.lastExit)
        c.lastExit = {
          code: info.exitCode,
          timeMs: info.finishedAt,
          oom: info.oomKilled,
          runStartedAt: info.startedAt,
        };
    } else if (
      resync &&
      ev.type === 'updated' &&
      prevInfo &&
      info.startedAt > 0 &&
      info.startedAt !== prevInfo.startedAt
    ) {
      // runs started while the agent was not listening
      const missed =
        prevInfo.startedAt > 0
          ? Math.max(1, info.restartCount - prevInfo.restartCount)
          : info.restartCount;
      c.restarts += Math.max(0, missed);
      c.hasRun = true;
      c.reconciledStartedAt = info.startedAt;
      c.run = undefined; // its end was not seen: not exported
      if (isLive(info.state)) {
        c.runs += 1;
        c.run = {
          startMs: info.startedAt,
          inspectStartedAt: info.startedAt,
          events: [],
          oom: false,
          attempt: c.runs,
        };
      }
      if (!isLive(info.state) && info.finishedAt > 0)
        c.lastExit = {
          code: info.exitCode,
          timeMs: info.finishedAt,
          oom: info.oomKilled,
          runStartedAt: info.startedAt,
        };
    } else if (
      resync &&
      c.run &&
      !isLive(info.state) &&
      info.finishedAt > 0 &&
      Math.abs(info.startedAt - (c.run.inspectStartedAt || c.run.startMs)) < MATCH_MS
    ) {
      // the run ended while the agent was not listening: its real end is known from inspect
      c.run.oom = c.run.oom || info.oomKilled;
      this.endRun(c, info.finishedAt, info.exitCode);
    }

    if (c.hasRun === false && info.startedAt > 0) {
      c.hasRun = true;
      // the inspect of a new container landed before its first start event: open the run it
      // describes; that start event then adopts it instead of counting a restart
      if (isLive(info.state) && !c.run) {
        c.runs += 1;
        c.run = {
          startMs: info.startedAt,
          inspectStartedAt: info.startedAt,
          events: [],
          oom: false,
          attempt: c.runs,
          openedByInspect: true,
        };
      }
    }

    // match the open run with inspect's StartedAt (the OomTracker's key)
    if (c.run && !c.run.inspectStartedAt && Math.abs(info.startedAt - c.run.startMs) < MATCH_MS)
      c.run.inspectStartedAt = info.startedAt;
    if (c.pendingOom && Math.abs(info.startedAt - c.pendingOom.approxStartMs) < MATCH_MS)
      this.flushPendingOom(c, info.startedAt);

    // the inspect after a die is authoritative for the OOM flag and exit code of that exit. The
    // same run: the same StartedAt (the die event can be sent seconds after FinishedAt on a busy
    // host, so the end times alone may not match), or end times within the window
    const last = c.lastExit;
    if (!isLive(info.state) && info.finishedAt > 0 && last) {
      const sameRun =
        (last.runStartedAt > 0 && Math.abs(info.startedAt - last.runStartedAt) < MATCH_MS) ||
        Math.abs(last.timeMs - info.finishedAt) < MATCH_MS;
      if (sameRun) {
        if (info.oomKilled && !last.oom) this.lateOom(c, info.finishedAt);
        if (info.oomKilled) this.hooks.oomVerdict?.(info.id, info.startedAt);
        last.code = info.exitCode;
      }
    }
    if (isLive(info.state) || info.startedAt > 0) this.hooks.track?.(info.id, info.startedAt);
  }

  /** Health read by an inspect after a health probe ran (the inventory only re-inspects on status changes). */
  onHealthProbe(id: string, health: HealthState, failingStreak: number): void {
    const c = this.byId.get(id);
    if (!c || c.removedAt !== undefined) return;
    c.health = health;
    c.failingStreak = failingStreak;
  }

  /** Deletes containers destroyed more than the grace ago. */
  sweep(): void {
    const now = this.now();
    for (const [id, c] of this.byId) {
      if (c.endedRun && now - c.endedRun.exit.timeMs > LATE_OOM_MS) c.endedRun = undefined;
      if (c.removedAt !== undefined && now - c.removedAt >= this.graceMs) {
        this.byId.delete(id);
        this.hooks.forget?.(id);
      }
    }
  }

  /** Containers to serve: known from a snapshot (labels) and not forgotten. */
  served(): TrackedContainer[] {
    return this.containers().filter((c) => c.info !== undefined);
  }
}

/** An exec_create of the container's own health check (the daemon's probe, not a person). */
export function isHealthProbe(info: ContainerInfo | undefined, action: string): boolean {
  const probe = info?.security?.healthCheckCommand;
  if (!probe) return false;
  const colon = action.indexOf(':');
  return colon >= 0 && action.slice(colon + 1).trim() === probe.trim();
}

/** A run is in progress (a `restarting` container is waiting between runs). */
function isLive(s: ContainerState): boolean {
  return s === 'running' || s === 'paused';
}

export { CONTAINER_STATES };
