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
  /** Records delivered to the receiver (acknowledged by the exporter). */
  linesShipped: number;
  /** Bytes written to the log but not read yet (0 for Engine API streams: unknown). */
  bytesBehind: number;
  /**
   * The last problem of this container's logs: the export error of a batch with its records
   * (until one is delivered), else the last read problem; null when none.
   */
  lastError: string | null;
}

export interface LogShippingSnapshot {
  /** Keyed by container id. */
  containers: ReadonlyMap<string, LogShippingContainer>;
  queue: { records: number; bytes: number };
  exported: number;
  /** When a batch was last delivered, ms since the epoch; null: never. */
  lastSuccessAt: number | null;
  /** The last export error; null once a batch is delivered after it. */
  lastError: string | null;
  exportFailures: Record<string, number>;
  drops: Record<string, number>;
}

/** Read-only view of log shipping; building it is cheap and synchronous (log-source.ts). */
export interface LogShippingSource {
  snapshot(): LogShippingSnapshot;
}

/** A failed security check of a container (container_security_findings). */
export interface SecurityFinding {
  check: string;
  severity: string;
  /** CIS Docker Benchmark recommendation(s) it maps to. */
  cis: string;
  /** What is wrong, as a sentence fragment ("runs with --privileged"). */
  what: string;
  /** Exempted by an allow list (still shown, not counted). */
  allowed: boolean;
}

export interface OtlpEndpointStatus {
  signal: 'logs' | 'traces';
  /** Where the exporter sends: the full URL for OTLP/HTTP, `http(s)://host:port` for gRPC. */
  url: string;
  /** `grpc`, `http/protobuf` or `http/json`. */
  protocol: string;
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
  /** Failed security checks of a container; undefined when not judged (security off, not seen). */
  findings?: (id: string) => readonly SecurityFinding[] | undefined;
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
  /** Failed security checks not exempted by an allow list; null when not judged. */
  findings: number | null;
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
    /** When a batch was last delivered, ms since the epoch; null: never or unknown. */
    lastSuccessAt: number | null;
    lastError: string | null;
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
  /** Every failed security check, exempted ones marked; null when not judged. */
  securityFindings: SecurityFinding[] | null;
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
  const findings = s.findings?.(c.id);
  let failed: number | null = null;
  if (findings) {
    failed = 0;
    for (const f of findings) if (!f.allowed) failed++;
  }
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
    logs: logs?.containers.get(c.id) ?? null,
    findings: failed,
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
      lastSuccessAt: logs?.lastSuccessAt ?? null,
      lastError: logs?.lastError ?? null,
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
    // own labels only (an allowlisted `constructor` is not Object.prototype's)
    const v = Object.hasOwn(c.labels, k) ? c.labels[k] : undefined;
    if (typeof v === 'string') labels[k] = v;
  }
  const history = s.usage.history(c.id) ?? { times: [], cpuCores: [], memoryBytes: [] };
  return {
    ...statusContainer(c, s, now, s.logs?.snapshot()),
    createdAt: c.createdAt,
    finishedAt: c.finishedAt || null,
    runs: s.lifecycle?.(c.id)?.runs ?? 0,
    labels,
    logDriver: c.logDriver,
    securityFindings: s.findings?.(c.id)?.slice() ?? null,
    history: {
      ...history,
      intervalSeconds: s.usageIntervalSeconds,
      windowSeconds: s.usageIntervalSeconds * s.usage.slots,
    },
  };
}
