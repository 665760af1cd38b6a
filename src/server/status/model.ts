/**
 * The status document (`GET /api/v1/status`, documented in the README) and the narrow read-only
 * sources it is built from. Building it is synchronous and does no I/O: everything comes from
 * memory the agent already holds (inventory, lifecycle tracker, usage ring, a log snapshot), so
 * the page can be refreshed every few seconds at thousands of containers.
 */
import type { ComponentHealth } from '../../component.js';
import type { ContainerInfo } from '../../docker/types.js';
import type { UsageHistory, UsageRing } from './ring.js';

/** Bumped on incompatible changes of the document. */
export const STATUS_SCHEMA_VERSION = 1;

export interface LifecycleView {
  /** Restarts observed by the agent since it first saw the container. */
  restarts: number;
  /** Runs (starts) observed by the agent. */
  runs: number;
  lastExit: { code: number; at: number; oomKilled: boolean } | null;
  /** OOM kills seen by the agent (daemon events and cgroup counters). */
  oomKills: number;
}

export interface LogShippingContainer {
  /** Records read from the container's log. */
  linesRead: number;
  /** Records delivered to the receiver; null while the log side does not count them per container. */
  linesShipped: number | null;
  /** Bytes written to the log but not read yet. */
  bytesBehind: number;
  /** The last export error of this container's records; null when none is known. */
  lastError: string | null;
}

export interface LogShippingSnapshot {
  /** Keyed by container name (the log metrics are labelled `container_name`). */
  containers: ReadonlyMap<string, LogShippingContainer>;
  queue: { records: number; bytes: number };
  exported: number;
  exportFailures: Record<string, number>;
  drops: Record<string, number>;
}

/**
 * Read-only view of log shipping. Today it is filled from the agent's metrics registry
 * (registry-log-source.ts); the log pipeline can implement it directly (see README, status API).
 */
export interface LogShippingSource {
  /** Brings the snapshot up to date (at most every few seconds; never throws). */
  refresh(): Promise<void>;
  snapshot(): LogShippingSnapshot | undefined;
}

export interface OtlpEndpointStatus {
  signal: 'logs' | 'traces';
  url: string;
  ok: boolean;
  /** ms since the epoch; null when unknown or never. */
  lastSuccessAt: number | null;
  lastError: string | null;
}

export interface DaemonStatus {
  url: string;
  connected: boolean;
  apiVersion: string | null;
  serverVersion: string | null;
  detail: string | null;
}

/** What the status page is built from (handed over by the agent, the composition root). */
export interface StatusSources {
  version: string;
  hostName: string;
  /** When the agent started, ms since the epoch. */
  startedAt: number;
  now?: () => number;
  containers: () => readonly ContainerInfo[];
  container: (id: string) => ContainerInfo | undefined;
  daemon: () => DaemonStatus;
  components: () => Record<string, ComponentHealth>;
  lifecycle?: (id: string) => LifecycleView | undefined;
  usage: Pick<UsageRing, 'latest' | 'history' | 'slots'>;
  /** Seconds between two usage samples. */
  usageIntervalSeconds: number;
  logs?: LogShippingSource;
  otlp: () => OtlpEndpointStatus[];
  /** Container label keys that may be shown (the operator's allowlist). */
  labelAllowlist: readonly string[];
}

export interface StatusContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  health: string;
  /** Start of the current or last run, ms since the epoch; null when never started. */
  startedAt: number | null;
  /** Seconds the current run has lasted; null when not running. */
  uptimeSeconds: number | null;
  restarts: number;
  lastExit: LifecycleView['lastExit'];
  oomKills: number;
  /** CPU over the last sampling interval, in cores; null before two samples. */
  cpuCores: number | null;
  memoryBytes: number | null;
  /** 0 when unlimited. */
  memoryLimitBytes: number;
  logs: LogShippingContainer | null;
}

export interface StatusDocument {
  schemaVersion: number;
  generatedAt: number;
  agent: {
    version: string;
    hostName: string;
    startedAt: number;
    uptimeSeconds: number;
    node: string;
  };
  daemon: DaemonStatus;
  components: Array<{ name: string; ok: boolean; detail: string | null }>;
  otlp: OtlpEndpointStatus[];
  logs: {
    enabled: boolean;
    queue: { records: number; bytes: number } | null;
    exported: number | null;
    exportFailures: Record<string, number>;
    drops: Record<string, number>;
  };
  containers: StatusContainer[];
}

export interface ContainerDetail extends StatusContainer {
  createdAt: number;
  finishedAt: number | null;
  runs: number;
  /** Allowlisted labels only. */
  labels: Record<string, string>;
  logDriver: string;
  history: UsageHistory & { intervalSeconds: number; windowSeconds: number };
}

function statusContainer(
  c: ContainerInfo,
  s: StatusSources,
  now: number,
  logs: LogShippingSnapshot | undefined,
): StatusContainer {
  const life = s.lifecycle?.(c.id);
  const use = s.usage.latest(c.id);
  const running = c.state === 'running' || c.state === 'paused';
  return {
    id: c.id,
    name: c.name,
    image: c.image,
    state: c.state,
    health: c.health,
    startedAt: c.startedAt || null,
    uptimeSeconds: running && c.startedAt ? Math.max(0, (now - c.startedAt) / 1000) : null,
    restarts: life?.restarts ?? 0,
    lastExit:
      life?.lastExit ??
      (c.finishedAt && !running
        ? { code: c.exitCode, at: c.finishedAt, oomKilled: c.oomKilled }
        : null),
    oomKills: life?.oomKills ?? 0,
    cpuCores: running ? (use?.cpuCores ?? null) : null,
    memoryBytes: running ? (use?.memoryBytes ?? null) : null,
    memoryLimitBytes: c.spec.memoryLimit,
    logs: logs?.containers.get(c.name) ?? null,
  };
}

/** The whole status document, containers sorted by name. */
export function buildStatus(s: StatusSources): StatusDocument {
  const now = (s.now ?? Date.now)();
  const logs = s.logs?.snapshot();
  const containers = s.containers().map((c) => statusContainer(c, s, now, logs));
  containers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    generatedAt: now,
    agent: {
      version: s.version,
      hostName: s.hostName,
      startedAt: s.startedAt,
      uptimeSeconds: Math.max(0, (now - s.startedAt) / 1000),
      node: process.versions.node,
    },
    daemon: s.daemon(),
    components: Object.entries(s.components()).map(([name, h]) => ({
      name,
      ok: h.ok,
      detail: h.detail ?? null,
    })),
    otlp: s.otlp(),
    logs: {
      enabled: s.logs !== undefined,
      queue: logs?.queue ?? null,
      exported: logs?.exported ?? null,
      exportFailures: logs?.exportFailures ?? {},
      drops: logs?.drops ?? {},
    },
    containers,
  };
}

/** One container with its labels (allowlisted only), lifecycle and usage history. */
export function buildContainerDetail(s: StatusSources, id: string): ContainerDetail | undefined {
  const c = s.container(id);
  if (!c) return undefined;
  const now = (s.now ?? Date.now)();
  const labels: Record<string, string> = {};
  for (const k of s.labelAllowlist) {
    const v = c.labels[k];
    if (v !== undefined) labels[k] = v;
  }
  const history = s.usage.history(c.id) ?? { times: [], cpuCores: [], memoryBytes: [] };
  return {
    ...statusContainer(c, s, now, s.logs?.snapshot()),
    createdAt: c.createdAt,
    finishedAt: c.finishedAt || null,
    runs: s.lifecycle?.(c.id)?.runs ?? 0,
    labels,
    logDriver: c.logDriver,
    history: {
      ...history,
      intervalSeconds: s.usageIntervalSeconds,
      windowSeconds: s.usageIntervalSeconds * s.usage.slots,
    },
  };
}
