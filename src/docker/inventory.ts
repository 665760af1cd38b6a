import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Component, ComponentHealth } from '../component.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import type { ApiContainerInspect, ApiContainerSummary, ApiInfo } from './api-types.js';
import { cgroupParentFromProc, containerCgroupPath } from './cgroup-path.js';
import { DockerError, type DockerClient, type StreamHandle } from './client.js';
import { backoffWait, isOrphanedSocket, type BackoffWake } from './socket-wait.js';
import { NON_STATE_ACTIONS, eventLabels } from './events.js';
import {
  CONTAINER_STATES,
  HEALTH_STATES,
  type ContainerInfo,
  type ContainerSecurity,
  type ContainerSource,
  type ContainerState,
  type DockerEvent,
  type HealthState,
  type InventoryEvent,
  type InventoryListener,
} from './types.js';

/** What the inventory learned about the engine at the last (re)connect. */
export interface EngineInfo {
  apiVersion: string;
  serverVersion: string;
  storageDriver: string;
  cgroupDriver: string;
  cgroupVersion: string;
  dockerRootDir: string;
  info: ApiInfo;
}

export interface InventoryOptions {
  client: DockerClient;
  logger: Logger;
  registry?: Registry;
  removedGraceMs?: number;
  maxBackoffMs?: number;
  initialBackoffMs?: number;
  /**
   * While the event stream has been idle this long, GET /_ping; 0: off. A daemon behind tcp://
   * that vanishes silently (no FIN, no RST) otherwise leaves the stream open forever.
   */
  heartbeatMs?: number;
  /** How long the heartbeat ping may take before the stream is dropped and reconnected. */
  heartbeatTimeoutMs?: number;
  /**
   * Called once when the unix socket is a bind mount of a socket the daemon deleted
   * (isOrphanedSocket): no reconnect can work, only a restart of the agent's container. The agent
   * stops and exits with EXIT_STALE_SOCKET.
   */
  onStaleSocket?: (message: string) => void;
  now?: () => number;
  /**
   * The host's /proc (proc_root), to learn the daemon's default cgroup parent from a running
   * container's /proc/<pid>/cgroup (see daemonCgroupParent). Unset: the default `/docker`
   * (cgroupfs) or `system.slice` (systemd) is assumed.
   */
  procRoot?: string;
}

function parseTime(s: string | undefined): number {
  if (!s) return 0;
  const t = Date.parse(s);
  return Number.isFinite(t) && t > 0 ? t : 0;
}

function toState(s: string | undefined): ContainerState {
  return (CONTAINER_STATES as readonly string[]).includes(s ?? '') ? (s as ContainerState) : 'dead';
}

/**
 * Docker fills State.Health only when the container starts, so the inspect made on its `create`
 * event has none even with a health check configured. Such a container (created, or running
 * before the daemon's first probe) has not passed its check yet: 'starting', not 'none' (which
 * means "no health check").
 */
function toHealth(c: ApiContainerInspect, state: ContainerState): HealthState {
  const s = c.State?.Health?.Status ?? '';
  if ((HEALTH_STATES as readonly string[]).includes(s)) return s as HealthState;
  const test = c.Config?.Healthcheck?.Test ?? [];
  const configured = test.length > 0 && test[0] !== 'NONE';
  const live = state === 'created' || state === 'running' || state === 'restarting';
  return configured && live ? 'starting' : 'none';
}

/**
 * The cgroup parent the daemon gave a container created without `--cgroup-parent`: Docker's
 * inspect leaves HostConfig.CgroupParent empty even when the daemon runs with `--cgroup-parent`
 * (or `cgroup-parent` in daemon.json), so the only record of where the container's cgroup is,
 * is the kernel's: `<procRoot>/<pid>/cgroup` of its init process. Undefined when the container
 * has its own parent, is not running, or the file names no cgroup of this container (then the
 * previous answer, or Docker's default, is used).
 */
export function daemonCgroupParent(
  c: ApiContainerInspect,
  procRoot: string | undefined,
): string | undefined {
  const pid = c.State?.Pid ?? 0;
  if (procRoot === undefined || c.HostConfig?.CgroupParent || !(pid > 0)) return undefined;
  let text: string;
  try {
    text = readFileSync(join(procRoot, String(pid), 'cgroup'), 'utf8');
  } catch {
    return undefined; // exited meanwhile, or /proc of another pid namespace
  }
  return cgroupParentFromProc(text, c.Id);
}

/**
 * Builds an inventory entry from an inspect response. `daemonParent`: the daemon's default
 * cgroup parent when it is not Docker's default (learned by daemonCgroupParent); a container's
 * own `--cgroup-parent` (HostConfig.CgroupParent) always wins.
 */
export function fromInspect(
  c: ApiContainerInspect,
  cgroupDriver: string,
  daemonParent = '',
): ContainerInfo {
  const st = c.State ?? {};
  const hc = c.HostConfig ?? {};
  const path = containerCgroupPath(c.Id, cgroupDriver, hc.CgroupParent || daemonParent);
  const state = toState(st.Status);
  return {
    id: c.Id,
    name: (c.Name ?? '').replace(/^\//, ''),
    image: c.Config?.Image ?? '',
    imageId: c.Image ?? '',
    labels: { ...(c.Config?.Labels ?? {}) },
    state,
    pid: st.Pid ?? 0,
    createdAt: parseTime(c.Created),
    startedAt: parseTime(st.StartedAt),
    finishedAt: parseTime(st.FinishedAt),
    restartCount: c.RestartCount ?? 0,
    exitCode: st.ExitCode ?? 0,
    oomKilled: st.OOMKilled ?? false,
    health: toHealth(c, state),
    healthFailingStreak: st.Health?.FailingStreak ?? 0,
    networkMode: hc.NetworkMode ?? '',
    logDriver: hc.LogConfig?.Type ?? '',
    logPath: c.LogPath ?? '',
    cgroup: { v1: path, v2: path },
    spec: {
      cpuShares: hc.CpuShares ?? 0,
      cpuPeriod: hc.CpuPeriod ?? 0,
      cpuQuota: hc.CpuQuota ?? 0,
      nanoCpus: hc.NanoCpus ?? 0,
      memoryLimit: hc.Memory ?? 0,
      memorySwap: hc.MemorySwap ?? 0,
      memoryReservation: hc.MemoryReservation ?? 0,
      pidsLimit: hc.PidsLimit ?? 0,
    },
    security: securityFromInspect(c),
  };
}

/** `cap_net_admin` / `CAP_NET_ADMIN` / `net_admin` → `NET_ADMIN`. */
function normalizeCap(c: string): string {
  const u = c.trim().toUpperCase();
  return u.startsWith('CAP_') ? u.slice(4) : u;
}

/** The command line of a container's health probes, as exec events show it ('' for none). */
function healthCheckCommand(c: ApiContainerInspect): string {
  const test = c.Config?.Healthcheck?.Test ?? [];
  const [kind, ...rest] = test;
  if (kind === 'CMD') return rest.join(' ');
  if (kind === 'CMD-SHELL') {
    const shell = c.Config?.Shell?.length ? c.Config.Shell : ['/bin/sh', '-c'];
    return [...shell, rest.join(' ')].join(' ');
  }
  return '';
}

/** The security settings of an inspect response (collectors/security.ts turns them into posture). */
export function securityFromInspect(c: ApiContainerInspect): ContainerSecurity {
  const hc = c.HostConfig ?? {};
  return {
    privileged: hc.Privileged ?? false,
    user: (c.Config?.User ?? '').trim(),
    usernsMode: hc.UsernsMode ?? '',
    capAdd: (hc.CapAdd ?? []).map(normalizeCap),
    capDrop: (hc.CapDrop ?? []).map(normalizeCap),
    securityOpt: [...(hc.SecurityOpt ?? [])],
    readOnlyRootfs: hc.ReadonlyRootfs ?? false,
    pidMode: hc.PidMode ?? '',
    ipcMode: hc.IpcMode ?? '',
    utsMode: hc.UTSMode ?? '',
    cgroupnsMode: hc.CgroupnsMode ?? '',
    binds: (c.Mounts ?? [])
      .filter((m) => m.Type === 'bind' && typeof m.Source === 'string')
      .map((m) => ({
        source: m.Source ?? '',
        destination: m.Destination ?? '',
        readOnly: m.RW === false,
      })),
    healthCheckCommand: healthCheckCommand(c),
  };
}

function sameContainer(a: ContainerInfo, b: ContainerInfo): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Docker's `since` for an `/events` subscription, with nine fractional digits: the second of the
 * last event handled, or before the first, the agent's start; both on the daemon's clock as it
 * reads now (`/info`), from the time elapsed on a clock that never steps. When the daemon's clock
 * stepped back since the last event, that event's second lies ahead of the daemon's clock (Docker
 * would then skip what happened since): the subscription starts where the event is on the
 * daemon's clock now, a second early. (A replay repeats events already handled; the inventory
 * skips them by their raw line.)
 */
export function eventsSince(o: {
  /** The daemon's clock (ms) when it answered `/info`. */
  daemonNowMs: number;
  /** Docker's `time` of the last event handled (s), 0 before the first. */
  lastEventSec: number;
  /** ms since the last event was handled, on a monotonic clock. */
  lastEventAgoMs: number;
  /** ms since the agent started, on a monotonic clock. */
  startedAgoMs: number;
}): string {
  let ms: number;
  if (o.lastEventSec > 0) {
    const handledSec = Math.floor((o.daemonNowMs - Math.max(0, o.lastEventAgoMs)) / 1000);
    ms = (handledSec < o.lastEventSec ? handledSec - 1 : o.lastEventSec) * 1000;
  } else ms = Math.floor(o.daemonNowMs - Math.max(0, o.startedAgoMs));
  ms = Math.max(1000, ms);
  return `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1_000_000).padStart(9, '0')}`;
}

/**
 * Whether an event came in a replay (Docker's `since`), not live: it happened before the daemon
 * answered `/info` right before the subscription. Or, received before the re-list finished, it
 * carries a time more than 2 s ahead of the daemon's clock now: written before that clock stepped
 * back (a `since` placed on the stepped clock replays those too). A live event after a forward
 * step is not mistaken for one unless it comes during the re-list.
 */
export function isReplay(o: {
  /** The event's time on the daemon's clock (ms); 0 when it has none. */
  atMs: number;
  /** The daemon's clock (ms) when it answered `/info`. */
  subscribedAtMs: number;
  /** ms since then, on a monotonic clock. */
  sinceSubscribedMs: number;
  /** Received before the re-list finished. */
  early: boolean;
}): boolean {
  if (o.atMs <= 0) return false;
  if (o.atMs < o.subscribedAtMs) return true;
  return o.early && o.atMs > o.subscribedAtMs + Math.max(0, o.sinceSubscribedMs) + 2000;
}

/**
 * The single source of container identity: lists and inspects every container, then follows
 * `/events`; re-lists after every reconnect because the daemon forgets events on restart. Each
 * subscription asks for the events since the agent's start (then since the last event seen), so
 * a container that started and was removed while the stream was not open is still seen; a
 * replayed event already handled is skipped.
 */
export class Inventory implements Component, ContainerSource {
  readonly name = 'inventory';
  private readonly client: DockerClient;
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private readonly removedGraceMs: number;
  private readonly maxBackoffMs: number;
  private readonly initialBackoffMs: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly now: () => number;
  private readonly containers = new Map<string, ContainerInfo>();
  private readonly removed = new Map<string, { info: ContainerInfo; expires: number }>();
  private readonly listeners = new Set<InventoryListener>();
  private readonly eventListeners = new Set<(e: DockerEvent, replayed: boolean) => void>();
  private readonly inflight = new Map<string, { dirty: boolean }>();
  private readonly tombstones = new Map<string, number>();
  private engineInfo: EngineInfo | undefined;
  private synced = false;
  private reachable = false;
  private lastError: string | undefined;
  private stream: StreamHandle | undefined;
  private controller = new AbortController();
  private loop: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readySince = 0;
  /**
   * Where the next `/events` subscription starts (Docker's `since`): the agent's start on the
   * first connect, then the second of the last event seen. Without it, a container that starts
   * and is removed between the agent's start (or a lost stream) and the subscription is never
   * seen: no start event, so its log file is neither read nor counted as unread.
   */
  private readonly startedMono: number;
  /** Docker's `time` (seconds) of the last event handled; 0 before the first. */
  private lastEventSec = 0;
  /** performance.now() when the last event was handled (a clock that never steps). */
  private lastEventMono = 0;
  /**
   * The raw lines of the last 256 events handled (the daemon keeps and replays no more than
   * that): a replay after a reconnect skips them, whatever their time says.
   */
  private readonly recentLines = new Set<string>();
  /**
   * The daemon's clock (ms) when it answered `/info` right before the current subscription: an
   * event older than that is a replay (see onDockerEvent).
   */
  private subscribedAtMs = 0;
  /** performance.now() when `/info` answered (subscribedAtMs). */
  private subscribedMono = 0;
  private readonly syncWaiters = new Set<() => void>();
  private readonly metrics: {
    reachable: Gauge;
    events: Counter;
    reconnects: Counter;
    byState: Gauge;
    errors: Counter;
  };

  private readonly procRoot: string | undefined;
  private readonly onStaleSocket: ((message: string) => void) | undefined;
  /** The daemon's default cgroup parent as last seen in a running container's /proc/<pid>/cgroup. */
  private daemonParent = '';

  constructor(opts: InventoryOptions) {
    this.client = opts.client;
    this.log = opts.logger.child({ component: 'inventory' });
    this.once = new OnceLogger(this.log);
    this.removedGraceMs = opts.removedGraceMs ?? 60_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
    this.initialBackoffMs = Math.max(10, opts.initialBackoffMs ?? 250);
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 5_000;
    this.now = opts.now ?? Date.now;
    this.procRoot = opts.procRoot;
    this.onStaleSocket = opts.onStaleSocket;
    this.startedMono = performance.now(); // compared with the daemon's clock: not an injected now()
    const registers = opts.registry ? [opts.registry] : [];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.metrics = {
      reachable: new Gauge({
        name: 'harbormaster_docker_up',
        help: 'Whether the Docker daemon is reachable and the event stream is open (1) or not (0).',
        registers,
        collect() {
          this.set(self.reachable ? 1 : 0);
        },
      }),
      events: new Counter({
        name: 'docker_engine_events_total',
        help: 'Events received from the Docker daemon, by object type and action (unknown ones as "other").',
        labelNames: ['type', 'action'],
        registers,
      }),
      reconnects: new Counter({
        name: 'harbormaster_docker_reconnects_total',
        help: 'Times the agent re-established its connection to the Docker daemon after losing it.',
        registers,
      }),
      errors: new Counter({
        name: 'harbormaster_docker_errors_total',
        help: 'Failures talking to the Docker daemon, by bounded reason.',
        labelNames: ['reason'],
        registers,
      }),
      byState: new Gauge({
        name: 'harbormaster_inventory_containers',
        help: 'Containers in the agent inventory, by state.',
        labelNames: ['state'],
        registers,
        collect() {
          const counts: Record<string, number> = {};
          for (const s of CONTAINER_STATES) counts[s] = 0;
          for (const c of self.containers.values()) counts[c.state] = (counts[c.state] ?? 0) + 1;
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        },
      }),
    };
  }

  // ---- ContainerSource ----
  list(): ContainerInfo[] {
    return [...this.containers.values()];
  }

  get(id: string): ContainerInfo | undefined {
    const live = this.containers.get(id);
    if (live) return live;
    const gone = this.removed.get(id);
    if (gone && gone.expires > this.now()) return gone.info;
    if (id.length >= 12 && id.length < 64) {
      for (const c of this.containers.values()) if (c.id.startsWith(id)) return c;
    }
    return undefined;
  }

  subscribe(listener: InventoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onDockerEvent(listener: (e: DockerEvent, replayed: boolean) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  ready(): boolean {
    return this.synced;
  }

  engine(): EngineInfo | undefined {
    return this.engineInfo;
  }

  /** Resolves at the next completed sync (or immediately if ready). */
  waitReady(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.syncWaiters.delete(done);
        resolve();
      };
      this.syncWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  health(): ComponentHealth {
    if (this.synced) return { ok: true, detail: `synced with ${this.client.endpoint.url}` };
    return { ok: false, detail: this.lastError ?? `connecting to ${this.client.endpoint.url}` };
  }

  // ---- Component ----
  start(signal: AbortSignal): Promise<void> {
    if (this.loop) return Promise.resolve();
    signal.addEventListener('abort', () => this.controller.abort(), { once: true });
    this.loop = this.run();
    this.sweepTimer = setInterval(
      () => this.sweep(),
      Math.max(1000, Math.min(this.removedGraceMs, 30_000)),
    );
    this.sweepTimer.unref();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.stream?.abort();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.loop;
    this.client.close();
  }

  // ---- internals ----
  private emit(ev: InventoryEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.once.error(
          'listener',
          { err },
          'An inventory subscriber threw; the inventory carries on.',
        );
      }
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, r] of this.removed) if (r.expires <= now) this.removed.delete(id);
    for (const [id, t] of this.tombstones) if (t <= now) this.tombstones.delete(id);
  }

  private setNotReady(reason: string): void {
    if (this.synced)
      this.log.warn(
        { reason },
        'Inventory is no longer synced with the Docker daemon; reporting not ready.',
      );
    this.synced = false;
    this.reachable = false;
    this.lastError = reason;
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    let backoff = this.initialBackoffMs;
    let everConnected = false;
    let wasLost = false;
    let lastReason: DockerError['reason'] | undefined;
    // how the last wait ended, and whether a socket wake was logged during this outage
    let lastWake: BackoffWake | undefined;
    let wakeLogged = false;
    let staleReported = false;
    while (!signal.aborted) {
      lastReason = undefined;
      try {
        await this.connectAndFollow(signal, () => {
          backoff = this.initialBackoffMs; // reset on success
          if (wasLost) this.metrics.reconnects.inc();
          if (everConnected || wasLost)
            this.log.info(
              { daemon: this.client.endpoint.url },
              'Reconnected to the Docker daemon; inventory re-listed.',
            );
          else
            this.log.info(
              { daemon: this.client.endpoint.url, apiVersion: this.client.apiVersion },
              'Connected to the Docker daemon; inventory synced.',
            );
          everConnected = true;
          wakeLogged = false;
          this.once.reset('connect');
        });
        if (signal.aborted) break;
        // the stream ended cleanly: the daemon went away (e.g. restarted)
        this.setNotReady(`the event stream from ${this.client.endpoint.url} closed`);
        this.log.warn(
          { daemon: this.client.endpoint.url },
          'The Docker daemon closed the event stream; reconnecting.',
        );
        wasLost = true;
      } catch (err) {
        if (signal.aborted) break;
        const e = err instanceof DockerError ? err : this.client.describeError(err);
        this.metrics.errors.inc({ reason: e.reason });
        lastReason = e.reason;
        this.setNotReady(e.message);
        this.once.error(
          'connect',
          {
            err: e.message,
            reason: e.reason,
            daemon: this.client.endpoint.url,
            retryInMs: backoff,
          },
          `Cannot reach the Docker daemon: ${e.message}. Retrying with backoff.`,
        );
        wasLost = true;
      }
      const sock = this.client.endpoint.socketPath;
      // Refused, and no links left: nothing listens on this socket and no name leads to it any
      // more. (A socket deleted while its daemon still listens answers: not stale.)
      if (sock && !staleReported && lastReason === 'connection_refused' && isOrphanedSocket(sock)) {
        staleReported = true;
        const msg =
          `The Docker socket ${sock} is a mount of a socket the daemon deleted (no links left, ` +
          `nothing listening): dockerd deletes its socket when it stops and binds a new one ` +
          `when it starts, and a bind mount (-v <host socket>:${sock}) keeps showing the old ` +
          `one, so no reconnect can reach the daemon through it. Stopping, so that the ` +
          `container's restart policy starts the agent again with the new socket mounted.`;
        this.setNotReady(msg);
        // logged by whoever stops the agent (the CLI: with the exit status), else here
        if (this.onStaleSocket) this.onStaleSocket(msg);
        else this.log.error({ socket: sock, daemon: this.client.endpoint.url }, msg);
      }
      const wake = await backoffWait(
        backoff,
        this.client.endpoint.socketPath,
        signal,
        (err) =>
          this.once.warn(
            'socket-watch',
            { err: err.message, socket: this.client.endpoint.socketPath },
            'Cannot watch the Docker socket for its return; retrying on the backoff timer only.',
          ),
        // not right after a socket wake: a path the connect cannot use but stat can (ENOENT for
        // another reason) would otherwise retry in a loop without a pause
        lastReason === 'socket_missing' && lastWake !== 'socket',
      );
      lastWake = wake;
      if (wake === 'socket') {
        // the daemon (or a link to it) is back: try now, and keep the next waits short in case
        // it is not answering yet. Said once per outage (a crash-looping dockerd binds it often).
        const socket = this.client.endpoint.socketPath;
        const msg = 'The Docker socket appeared again; reconnecting now.';
        if (wakeLogged) this.log.debug({ socket }, msg);
        else this.log.info({ socket }, msg);
        wakeLogged = true;
        backoff = this.initialBackoffMs;
        continue;
      }
      backoff = Math.max(this.initialBackoffMs, Math.min(this.maxBackoffMs, backoff * 2));
    }
    this.synced = false;
  }

  private async connectAndFollow(signal: AbortSignal, onSynced: () => void): Promise<void> {
    await this.client.negotiate(signal);
    const info = await this.client.get<ApiInfo>('/info', undefined, signal);
    // the daemon's clock, not the agent's: a remote daemon's may differ
    const daemonNow = parseTime(info.SystemTime) || Date.now();
    this.subscribedAtMs = daemonNow;
    this.subscribedMono = performance.now();
    this.engineInfo = {
      apiVersion: this.client.apiVersion ?? '',
      serverVersion: info.ServerVersion ?? '',
      storageDriver: info.Driver ?? '',
      cgroupDriver: info.CgroupDriver ?? 'cgroupfs',
      cgroupVersion: info.CgroupVersion ?? '1',
      dockerRootDir: info.DockerRootDir ?? '/var/lib/docker',
      info,
    };
    // Open the event stream first and buffer, so nothing between list and follow is missed.
    const buffered: Array<{ ev: DockerEvent; line: string }> = [];
    let live = false;
    let lastActivity = Date.now();
    let opened!: () => void;
    const openedP = new Promise<void>((r) => (opened = r));
    this.stream = this.client.stream(
      '/events',
      {
        since: eventsSince({
          daemonNowMs: daemonNow,
          lastEventSec: this.lastEventSec,
          lastEventAgoMs: performance.now() - this.lastEventMono,
          startedAgoMs: performance.now() - this.startedMono,
        }),
      },
      (line) => {
        lastActivity = Date.now();
        if (this.recentLines.has(line)) return; // replayed: handled before the reconnect
        let ev: DockerEvent;
        try {
          ev = JSON.parse(line) as DockerEvent;
        } catch {
          this.metrics.errors.inc({ reason: 'protocol_error' });
          this.once.warn(
            'event-json',
            { line: line.slice(0, 200) },
            'The Docker daemon sent an event that is not JSON; skipped.',
          );
          return;
        }
        if (live) this.handleEvent(ev, line);
        else buffered.push({ ev, line });
      },
      () => opened(),
    );
    const stream = this.stream;
    const done = stream.done;
    done.catch(() => undefined); // observed below; never an unhandled rejection
    try {
      await Promise.race([openedP, done]);
      await this.resync(signal);
    } catch (err) {
      stream.abort(); // do not leave a half-used stream open while we back off
      throw err;
    }
    this.reachable = true;
    live = true;
    for (const { ev, line } of buffered.splice(0)) this.handleEvent(ev, line, true);
    this.synced = true;
    this.lastError = undefined;
    this.readySince = this.now();
    onSynced();
    for (const w of [...this.syncWaiters]) w();
    const beat = this.heartbeat(signal, () => lastActivity);
    try {
      await Promise.race([done, beat.failed]);
    } catch (err) {
      stream.abort();
      throw err;
    } finally {
      beat.stop();
    }
  }

  /**
   * Remembers a handled event so that a replay after a reconnect skips it (an event received but
   * not handled, because the connection failed before the re-list finished, is not remembered:
   * the next subscription replays it).
   */
  private noteSeen(ev: DockerEvent, line: string): void {
    const sec =
      typeof ev.time === 'number' && ev.time > 0
        ? Math.floor(ev.time)
        : Math.floor((Number(ev.timeNano) || 0) / 1e9);
    if (sec > 0) {
      this.lastEventSec = sec;
      this.lastEventMono = performance.now();
    }
    this.recentLines.add(line);
    if (this.recentLines.size > 256) {
      const oldest = this.recentLines.values().next().value;
      if (oldest !== undefined) this.recentLines.delete(oldest);
    }
  }

  /**
   * Pings the daemon whenever the event stream has been idle for heartbeatMs. `failed` rejects
   * (DockerError) when a ping gets no answer within heartbeatTimeoutMs; it never resolves.
   */
  private heartbeat(
    signal: AbortSignal,
    lastActivity: () => number,
  ): { failed: Promise<never>; stop: () => void } {
    const every = this.heartbeatMs;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const failed = new Promise<never>((_, reject) => {
      if (every <= 0) return;
      const tick = (): void => {
        timer = undefined;
        if (stopped || signal.aborted) return;
        const idle = Date.now() - lastActivity();
        if (idle < every) {
          timer = setTimeout(tick, every - idle);
          timer.unref();
          return;
        }
        this.client.ping(this.heartbeatTimeoutMs, signal).then(
          () => {
            if (stopped) return;
            timer = setTimeout(tick, every);
            timer.unref();
          },
          (err: unknown) => {
            if (stopped || signal.aborted) return;
            const e = err instanceof DockerError ? err : this.client.describeError(err);
            reject(
              new DockerError(
                `the event stream from ${this.client.endpoint.url} was idle for ${Math.round(idle / 1000)} s and the daemon did not answer /_ping (${e.message}); reconnecting`,
                e.reason,
              ),
            );
          },
        );
      };
      timer = setTimeout(tick, every);
      timer.unref();
    });
    failed.catch(() => undefined); // observed by the caller's race
    return {
      failed,
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  /** fromInspect with the daemon's cgroup parent, learned from running containers (see daemonCgroupParent). */
  private toInfo(c: ApiContainerInspect, driver: string): ContainerInfo {
    const learned = daemonCgroupParent(c, this.procRoot);
    if (learned !== undefined) this.daemonParent = learned;
    return fromInspect(c, driver, learned ?? this.daemonParent);
  }

  /** Lists and inspects every container and reconciles the inventory with it. */
  private async resync(signal: AbortSignal): Promise<void> {
    const summaries = await this.client.get<ApiContainerSummary[]>(
      '/containers/json',
      { all: '1' },
      signal,
    );
    const fresh = new Map<string, ContainerInfo>();
    const driver = this.engineInfo?.cgroupDriver ?? 'cgroupfs';
    let idx = 0;
    const worker = async (): Promise<void> => {
      while (idx < summaries.length) {
        const s = summaries[idx++];
        if (!s) continue;
        try {
          const c = await this.client.get<ApiContainerInspect>(
            `/containers/${s.Id}/json`,
            undefined,
            signal,
          );
          fresh.set(c.Id, this.toInfo(c, driver));
        } catch (err) {
          if (err instanceof DockerError && err.reason === 'not_found') continue; // removed meanwhile
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, summaries.length) }, worker));
    for (const [id, old] of this.containers) {
      if (!fresh.has(id)) this.remove(id, old);
    }
    for (const [id, c] of fresh) this.upsert(c, id);
  }

  private upsert(c: ContainerInfo, id = c.id): void {
    if (this.tombstones.has(id)) return; // destroyed while an inspect was in flight
    const prev = this.containers.get(id);
    this.containers.set(id, c);
    if (!prev) this.emit({ type: 'added', container: c });
    else if (!sameContainer(prev, c)) this.emit({ type: 'updated', container: c, previous: prev });
  }

  private remove(id: string, info: ContainerInfo): void {
    this.containers.delete(id);
    this.removed.set(id, { info, expires: this.now() + this.removedGraceMs });
    this.emit({ type: 'removed', container: info });
  }

  /** `early`: received before the re-list finished (where a replay arrives). */
  private handleEvent(ev: DockerEvent, line: string, early = false): void {
    this.noteSeen(ev, line);
    const type = ev.Type ?? '';
    const action = ev.Action ?? '';
    this.metrics.events.inc(eventLabels(type, action));
    const replayed = isReplay({
      atMs: ev.timeNano ? ev.timeNano / 1e6 : (ev.time ?? 0) * 1000,
      subscribedAtMs: this.subscribedAtMs,
      sinceSubscribedMs: performance.now() - this.subscribedMono,
      early,
    });
    for (const l of this.eventListeners) {
      try {
        l(ev, replayed);
      } catch (err) {
        this.once.error(
          'event-listener',
          { err },
          'A Docker event subscriber threw; the inventory carries on.',
        );
      }
    }
    if (type !== 'container') return;
    const id = ev.Actor?.ID;
    if (!id) return;
    const base = action.split(':')[0]?.trim() ?? '';
    if (base === 'destroy') {
      this.tombstones.set(id, this.now() + Math.max(this.removedGraceMs, 60_000));
      const known = this.containers.get(id);
      if (known) this.remove(id, known);
      return;
    }
    if (NON_STATE_ACTIONS.has(base)) return;
    this.tombstones.delete(id); // an id is never reused, but be safe with create after destroy
    this.refresh(id);
  }

  /** Re-inspects a container, coalescing bursts of events into at most one extra inspect. */
  private refresh(id: string): void {
    const running = this.inflight.get(id);
    if (running) {
      running.dirty = true;
      return;
    }
    const state = { dirty: false };
    this.inflight.set(id, state);
    const signal = this.controller.signal;
    const driver = this.engineInfo?.cgroupDriver ?? 'cgroupfs';
    void (async () => {
      try {
        do {
          state.dirty = false;
          try {
            const c = await this.client.get<ApiContainerInspect>(
              `/containers/${id}/json`,
              undefined,
              signal,
            );
            this.upsert(this.toInfo(c, driver), id);
          } catch (err) {
            if (err instanceof DockerError && err.reason === 'not_found') {
              const known = this.containers.get(id);
              if (known) this.remove(id, known);
            } else if (!signal.aborted) {
              const e = err instanceof DockerError ? err : this.client.describeError(err);
              this.metrics.errors.inc({ reason: e.reason });
              this.once.warn(
                'inspect',
                { id, err: e.message },
                `Inspecting a container failed: ${e.message}. It is retried at the next event or reconnect.`,
              );
            }
          }
        } while (state.dirty && !signal.aborted);
      } finally {
        this.inflight.delete(id);
      }
    })();
  }
}
