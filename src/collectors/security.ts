/**
 * Security posture as metrics: per running container (container_security_*) from inspect data
 * the inventory already holds, and per engine (docker_engine_security_*) from /info (fetched by
 * the inventory at every reconnect), /version and the default bridge network (read every
 * `security.engine_interval_seconds`). No daemon call per scrape.
 *
 * A container's series are rendered once per inventory change into Buffers; a scrape only
 * concatenates them (cached as a whole until the next change), so posture adds next to nothing
 * to the cost of /metrics (see bench/security-posture.ts).
 */
import { readFileSync } from 'node:fs';
import { Counter, type Registry } from 'prom-client';
import type { AgentContext } from '../agent.js';
import type { Component, ComponentHealth } from '../component.js';
import { DockerError, type DockerClient } from '../docker/client.js';
import type { EngineInfo } from '../docker/inventory.js';
import type { ContainerInfo, ContainerSource } from '../docker/types.js';
import type { ExpositionChunks, ExpositionProvider } from '../exporters/prometheus.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import { containerLabels } from './containers.js';
import { escapeLabelValue, formatValue, header } from './exposition.js';
import {
  ALLOW_LABEL,
  CHECK_NAMES,
  SECURITY_CHECKS,
  allowedChecks,
  assessPosture,
  parseAllowRule,
  parseSecurityOptions,
  type AllowPolicy,
  type EngineSecurity,
  type Posture,
  type SecurityCheck,
} from './security-posture.js';

/** What a family's row sees of one container. */
export interface PostureRow {
  info: ContainerInfo;
  posture: Posture;
  /** Failed checks exempted by an allow list. */
  allowed: ReadonlySet<SecurityCheck>;
}

/** Series of one container in a family: extra label pairs (`,path="/etc"` or '') and a value. */
type Sample = readonly [extraLabels: string, value: number];

interface SecurityFamily {
  name: string;
  help: string;
  samples: (r: PostureRow) => readonly Sample[];
}

const flag = (b: boolean): readonly Sample[] => [['', b ? 1 : 0]];
const each = (label: string, values: readonly string[]): readonly Sample[] =>
  values.map((v) => [`,${label}="${escapeLabelValue(v)}"`, 1] as const);
const findings = (r: PostureRow, allowed: boolean): readonly Sample[] =>
  r.posture.failed
    .filter((c) => r.allowed.has(c) === allowed)
    .map((c) => {
      const d = SECURITY_CHECKS[c];
      return [`,check="${c}",severity="${d.severity}",cis="${d.cis}"`, 1] as const;
    });

/** Every per-container posture family, in output order. All are gauges. */
export const SECURITY_FAMILIES: readonly SecurityFamily[] = [
  {
    name: 'container_security_privileged',
    help: 'Whether the container runs with --privileged (1) or not (0). CIS 5.4.',
    samples: (r) => flag(r.posture.privileged),
  },
  {
    name: 'container_security_run_as_root',
    help: 'Whether the container runs as root on the host (1): user unset, 0 or root, and no user-namespace remapping or rootless daemon. CIS 4.1.',
    samples: (r) => flag(r.posture.runAsRoot),
  },
  {
    name: 'container_security_docker_socket_mounted',
    help: 'Whether the Docker socket (or a directory holding it) is bind-mounted into the container (1). CIS 5.31.',
    samples: (r) => flag(r.posture.dockerSocketMounted),
  },
  {
    name: 'container_security_sensitive_mount',
    help: 'Sensitive host paths bind-mounted into the container (1 per path, from a fixed list: /, /etc, /proc, /sys, /var/run/docker.sock, /var/lib/docker, /boot, /dev; a subdirectory counts as its parent, a directory holding one as the path it holds). CIS 5.5.',
    samples: (r) => each('path', r.posture.sensitiveMounts),
  },
  {
    name: 'container_security_capability_added',
    help: "Capabilities added with --cap-add beyond Docker's default set (1 per capability; ALL, or other for unknown names; the daemon grants an add even when it is dropped too). CIS 5.3.",
    samples: (r) => each('capability', r.posture.capabilitiesAdded),
  },
  {
    name: 'container_security_seccomp_unconfined',
    help: 'Whether the container runs with --security-opt seccomp=unconfined (1). CIS 5.21.',
    samples: (r) => flag(r.posture.seccompUnconfined),
  },
  {
    name: 'container_security_apparmor_unconfined',
    help: 'Whether the container runs with --security-opt apparmor=unconfined (1). CIS 5.1.',
    samples: (r) => flag(r.posture.apparmorUnconfined),
  },
  {
    name: 'container_security_no_new_privileges',
    help: 'Whether the container runs with --security-opt no-new-privileges (1: good). CIS 5.25.',
    samples: (r) => flag(r.posture.noNewPrivileges),
  },
  {
    name: 'container_security_read_only_rootfs',
    help: 'Whether the root filesystem of the container is read-only (1: good). CIS 5.12.',
    samples: (r) => flag(r.posture.readOnlyRootfs),
  },
  {
    name: 'container_security_host_namespace',
    help: 'Namespaces the container shares with the host (1 per namespace: pid, ipc, uts, network, user). CIS 5.9, 5.15, 5.16, 5.20, 5.30.',
    samples: (r) => each('namespace', r.posture.hostNamespaces),
  },
  {
    name: 'container_security_memory_unlimited',
    help: 'Whether the container has no memory limit (1). CIS 5.10.',
    samples: (r) => flag(r.posture.memoryUnlimited),
  },
  {
    name: 'container_security_pids_unlimited',
    help: 'Whether the container has no PIDs limit (1). CIS 5.28.',
    samples: (r) => flag(r.posture.pidsUnlimited),
  },
  {
    name: 'container_security_findings',
    help: 'One series (1) per failed security check of the container that no allow list exempts, with its severity (critical, high, medium, low) and CIS Docker Benchmark v1.2.0 recommendation.',
    samples: (r) => findings(r, false),
  },
  {
    name: 'container_security_findings_allowed',
    help: 'Failed security checks exempted by security.allow or the harbormaster.security.allow label (1 per check), so exemptions stay visible.',
    samples: (r) => findings(r, true),
  },
];

/** Containers whose posture is served: a stopped container runs nothing. */
const SERVED_STATES = new Set(['running', 'paused', 'restarting']);

/** Engine facts for the docker_engine_security_* families. */
export interface EnginePosture {
  usernsRemap: boolean;
  rootless: boolean;
  /** The daemon applies its default seccomp profile to containers without one. */
  seccompDefault: boolean;
  liveRestore: boolean;
  /** Inter-container communication on the default bridge; undefined until read. */
  icc: boolean | undefined;
  /** The agent talks to the daemon over tcp:// without TLS verification. */
  tcpWithoutTls: boolean;
  /** Engine build time (ms since the epoch); undefined until /version is read. */
  buildTimeMs: number | undefined;
  version: string;
}

export function enginePostureFromInfo(
  e: EngineInfo | undefined,
  extra: { icc?: boolean; buildTimeMs?: number; tcpWithoutTls: boolean },
): EnginePosture | undefined {
  if (!e) return undefined;
  const so = parseSecurityOptions(e.info.SecurityOptions);
  return {
    usernsRemap: so.names.has('userns'),
    rootless: so.names.has('rootless'),
    seccompDefault: so.seccompProfile === 'default' || so.seccompProfile === 'builtin',
    liveRestore: e.info.LiveRestoreEnabled ?? false,
    icc: extra.icc,
    tcpWithoutTls: extra.tcpWithoutTls,
    buildTimeMs: extra.buildTimeMs,
    version: e.serverVersion,
  };
}

/** Prometheus text of the engine posture. */
export function renderEnginePosture(p: EnginePosture, off: ReadonlySet<string>): string {
  let out = '';
  const g = (name: string, help: string, v: number | undefined): void => {
    if (v === undefined || off.has(name)) return;
    out += header(name, 'gauge', help) + `${name} ${formatValue(v)}\n`;
  };
  const b = (x: boolean | undefined): number | undefined =>
    x === undefined ? undefined : x ? 1 : 0;
  g(
    'docker_engine_security_userns_remap',
    'Whether the daemon remaps container users into a user namespace (--userns-remap) (1: good). CIS 2.8.',
    b(p.usernsRemap),
  );
  g('docker_engine_security_rootless', 'Whether the daemon runs rootless (1).', b(p.rootless));
  g(
    'docker_engine_security_seccomp_default_profile',
    'Whether the daemon applies its default seccomp profile to containers that set none (1: good). CIS 2.16.',
    b(p.seccompDefault),
  );
  g(
    'docker_engine_security_live_restore',
    'Whether live restore is enabled (containers keep running while the daemon restarts) (1). CIS 2.14.',
    b(p.liveRestore),
  );
  g(
    'docker_engine_security_icc',
    'Whether inter-container communication is allowed on the default bridge network (1: CIS 2.1 fails).',
    b(p.icc),
  );
  g(
    'docker_engine_security_tcp_without_tls',
    'Whether the agent reaches the daemon over tcp:// without TLS verification (1: anyone reaching the port controls the host). CIS 2.6; listeners the agent does not use cannot be seen.',
    b(p.tcpWithoutTls),
  );
  g(
    'docker_engine_security_build_timestamp_seconds',
    'Build time of the running engine (from /version), seconds since the epoch: time() minus this is the age of the engine. CIS 1.1.2.',
    p.buildTimeMs === undefined ? undefined : Math.floor(p.buildTimeMs / 1000),
  );
  return out;
}

export interface SecurityMetricsOptions {
  inventory: ContainerSource & { engine?(): EngineInfo | undefined };
  logger: Logger;
  registry?: Registry;
  /** Config entries `<check>@name=<glob>` / `<check>@image=<glob>`. */
  allow?: readonly string[];
  /** Checks the allow label may exempt (default none). */
  labelAllowChecks?: readonly string[];
  /**
   * Container label keys copied as container_label_<sanitized> (metrics.label_allowlist); a
   * function is read at every scrape, so a SIGHUP that changes the allowlist applies at once.
   */
  labelAllowlist?: readonly string[] | (() => readonly string[]);
  /** Family names switched off (metrics.disabled_metrics). */
  disabled?: readonly string[];
  /** Host path of the Docker socket the agent uses, when it is a unix socket. */
  socketPaths?: readonly string[];
  /** Engine facts beyond /info (bridge icc, build time, tcp without TLS). */
  engineExtra?: () => { icc?: boolean; buildTimeMs?: number; tcpWithoutTls: boolean };
  /** Id of the agent's own container (it mounts the socket on purpose), if it runs in one. */
  selfContainerId?: string;
}

interface Entry {
  row: PostureRow;
  /** Per family (SECURITY_FAMILIES order): this container's sample lines. */
  lines: Buffer[];
}

const NO_ENGINE: EngineSecurity = { usernsRemap: false, rootless: false };

export class SecurityMetrics implements ExpositionProvider {
  private readonly inventory: SecurityMetricsOptions['inventory'];
  private readonly once: OnceLogger;
  private readonly policy: AllowPolicy;
  private readonly allowlistOf: () => readonly string[];
  private allowlist: readonly string[];
  private readonly off: ReadonlySet<string>;
  private readonly families: ReadonlyArray<{ f: SecurityFamily; i: number; head: Buffer }>;
  private readonly socketPaths: readonly string[];
  private readonly engineExtra: NonNullable<SecurityMetricsOptions['engineExtra']>;
  private readonly selfId: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private cached: Buffer[] | undefined;
  private engineSeen: EngineInfo | undefined;
  private engineSec: EngineSecurity = NO_ENGINE;
  private unsubscribe: (() => void) | undefined;
  private readonly badLabels: Counter;

  constructor(o: SecurityMetricsOptions) {
    this.inventory = o.inventory;
    this.once = new OnceLogger(o.logger.child({ component: 'security' }));
    this.policy = {
      rules: (o.allow ?? []).map(parseAllowRule),
      labelChecks: new Set(
        (o.labelAllowChecks ?? []).filter((c): c is SecurityCheck =>
          (CHECK_NAMES as readonly string[]).includes(c),
        ),
      ),
    };
    const la = o.labelAllowlist ?? [];
    this.allowlistOf = typeof la === 'function' ? la : () => la;
    this.allowlist = [...this.allowlistOf()];
    this.off = new Set(o.disabled ?? []);
    this.families = SECURITY_FAMILIES.map((f, i) => ({
      f,
      i,
      head: Buffer.from(header(f.name, 'gauge', f.help)),
    })).filter((x) => !this.off.has(x.f.name));
    this.socketPaths = o.socketPaths ?? [];
    this.engineExtra = o.engineExtra ?? (() => ({ tcpWithoutTls: false }));
    this.selfId = o.selfContainerId;
    this.badLabels = new Counter({
      name: 'harbormaster_security_invalid_allow_labels_total',
      help: `Entries of the ${ALLOW_LABEL} label that name no check (ignored).`,
      registers: o.registry ? [o.registry] : [],
    });
  }

  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.inventory.subscribe((ev) => {
      if (ev.type === 'removed') this.entries.delete(ev.container.id);
      else this.upsert(ev.container);
      this.cached = undefined;
    });
    for (const c of this.inventory.list()) this.upsert(c);
    this.cached = undefined;
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** The failed checks of a container (for a status page): served and exempted ones. */
  findings(id: string): { failed: SecurityCheck[]; allowed: SecurityCheck[] } | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const failed = e.row.posture.failed;
    return {
      failed: failed.filter((c) => !e.row.allowed.has(c)),
      allowed: failed.filter((c) => e.row.allowed.has(c)),
    };
  }

  /** Re-judges every container when the engine's remapping/rootless mode changed. */
  private syncEngine(): void {
    const e = this.inventory.engine?.();
    if (e === this.engineSeen) return;
    this.engineSeen = e;
    const so = parseSecurityOptions(e?.info.SecurityOptions);
    const next = { usernsRemap: so.names.has('userns'), rootless: so.names.has('rootless') };
    if (
      next.usernsRemap === this.engineSec.usernsRemap &&
      next.rootless === this.engineSec.rootless
    )
      return;
    this.engineSec = next;
    for (const e2 of [...this.entries.values()]) this.upsert(e2.row.info);
    this.cached = undefined;
  }

  private upsert(info: ContainerInfo): void {
    const sec = info.security;
    if (!sec || !SERVED_STATES.has(info.state)) {
      this.entries.delete(info.id);
      return;
    }
    const posture = assessPosture(sec, info, {
      engine: this.engineSec,
      socketPaths: this.socketPaths,
    });
    const allowed = allowedChecks(info, this.policy, (tok) => {
      this.badLabels.inc();
      this.once.warn(
        `label:${info.id}`,
        { container: info.name, label: ALLOW_LABEL, entry: tok.slice(0, 100) },
        `The ${ALLOW_LABEL} label of container ${info.name} names an unknown check; it is ignored (checks: ${CHECK_NAMES.join(', ')}).`,
      );
    });
    if (this.selfId !== undefined && info.id === this.selfId) allowed.add('docker_socket');
    const row: PostureRow = { info, posture, allowed };
    const cgroupPath = this.engineSeen?.cgroupVersion === '2' ? info.cgroup.v2 : info.cgroup.v1;
    const labels = containerLabels(info, cgroupPath, this.allowlist);
    const lines = SECURITY_FAMILIES.map((f) => {
      let s = '';
      for (const [extra, v] of f.samples(row)) s += `${f.name}{${labels}${extra}} ${v}\n`;
      return Buffer.from(s);
    });
    this.entries.set(info.id, { row, lines });
  }

  /** Renders every container again when the label allowlist changed (SIGHUP). */
  private syncAllowlist(): void {
    const next = this.allowlistOf();
    if (next === this.allowlist) return;
    if (next.length === this.allowlist.length && next.every((k, i) => k === this.allowlist[i])) {
      this.allowlist = next;
      return;
    }
    this.allowlist = next;
    for (const e of [...this.entries.values()]) this.upsert(e.row.info);
    this.cached = undefined;
  }

  private assemble(): Buffer[] {
    this.syncEngine();
    this.syncAllowlist();
    if (this.cached) return this.cached;
    const chunks: Buffer[] = [];
    for (const { i, head } of this.families) {
      const start = chunks.length;
      for (const e of this.entries.values()) {
        const b = e.lines[i]!;
        if (b.length > 0) chunks.push(b);
      }
      if (chunks.length > start) chunks.splice(start, 0, head); // no samples: no header either
    }
    const ep = enginePostureFromInfo(this.inventory.engine?.(), this.engineExtra());
    if (ep) {
      const t = renderEnginePosture(ep, this.off);
      if (t) chunks.push(Buffer.from(t));
    }
    // one Buffer: thousands of small chunks would cost a write each when the response is sent
    this.cached = [Buffer.concat(chunks)];
    return this.cached;
  }

  render(): string {
    return Buffer.concat(this.assemble()).toString('utf8');
  }

  /** Every family is a gauge: the OpenMetrics text is the same. */
  renderChunks(): ExpositionChunks {
    return { chunks: this.assemble() };
  }

  /** Engine facts beyond /info changed (icc, build time): render again. */
  invalidate(): void {
    this.cached = undefined;
  }
}

/** `unix:///var/run/docker.sock` → `/var/run/docker.sock`; undefined for tcp://. */
function unixSocketPath(host: string): string | undefined {
  return host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}

/** The agent's own container id, when it runs in one (Docker bind-mounts /etc/hostname from
 * /var/lib/docker/containers/<id>/): its socket mount is what it needs, not a finding. */
export function selfContainerId(mountinfo: string): string | undefined {
  const m = /\/containers\/([0-9a-f]{64})\/(?:hostname|resolv\.conf|hosts)\b/.exec(mountinfo);
  return m?.[1];
}

/** The security feature: posture metrics, and the engine facts read on a slow interval. */
export class SecurityFeature implements Component {
  readonly name = 'security';
  readonly metrics: SecurityMetrics;
  private readonly docker: Pick<DockerClient, 'get'>;
  private readonly intervalMs: number;
  private readonly once: OnceLogger;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private extra: { icc?: boolean; buildTimeMs?: number; tcpWithoutTls: boolean };
  private readonly errors: Counter<'request'>;

  constructor(ctx: AgentContext, mountinfo: string) {
    const cfg = ctx.config.security;
    const host = ctx.docker.endpoint.url;
    const sock = unixSocketPath(host);
    this.docker = ctx.docker;
    this.intervalMs = cfg.engine_interval_seconds * 1000;
    this.once = new OnceLogger(ctx.logger.child({ component: 'security' }));
    this.extra = {
      tcpWithoutTls: /^(tcp|http):\/\//.test(host) && !ctx.config.docker.tls_verify,
    };
    this.errors = new Counter({
      name: 'harbormaster_security_engine_errors_total',
      help: 'Failed Docker API requests of the engine posture, by request (version, bridge_network).',
      labelNames: ['request'],
      registers: [ctx.metrics.registry],
    });
    this.metrics = new SecurityMetrics({
      inventory: ctx.inventory,
      logger: ctx.logger,
      registry: ctx.metrics.registry,
      allow: cfg.allow,
      labelAllowChecks: cfg.label_allow_checks,
      // SIGHUP replaces ctx.config: read the allowlist there at every scrape
      labelAllowlist: () => ctx.config.metrics.label_allowlist,
      disabled: ctx.config.metrics.disabled_metrics,
      socketPaths: sock ? [sock] : [],
      engineExtra: () => this.extra,
      selfContainerId: selfContainerId(mountinfo),
    });
    ctx.metrics.addProvider(this.metrics);
  }

  start(): Promise<void> {
    this.metrics.start();
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
    return Promise.resolve();
  }

  /** The response; null when the object does not exist (a daemon run with --bridge=none). */
  private async fetch<T>(request: string, path: string): Promise<T | null | undefined> {
    try {
      return await this.docker.get<T>(path, undefined, this.controller.signal);
    } catch (err) {
      if (this.controller.signal.aborted) return undefined;
      if (err instanceof DockerError && err.reason === 'not_found') return null;
      this.errors.inc({ request });
      const msg = err instanceof Error ? err.message : String(err);
      this.once.warn(
        `get:${request}`,
        { err: msg, path },
        `Reading ${path} for the engine security posture failed: ${msg}. Retrying at the next interval.`,
      );
      return undefined;
    }
  }

  async refresh(): Promise<void> {
    const [version, bridge] = await Promise.all([
      this.fetch<{ BuildTime?: string }>('version', '/version'),
      this.fetch<{ Options?: Record<string, string> | null }>('bridge_network', '/networks/bridge'),
    ]);
    const next = { ...this.extra };
    const built = Date.parse(version?.BuildTime ?? '');
    if (Number.isFinite(built) && built > 0) next.buildTimeMs = built;
    if (bridge) {
      const v = bridge.Options?.['com.docker.network.bridge.enable_icc'];
      next.icc = v === undefined ? true : v === 'true';
    } else if (bridge === null) next.icc = undefined; // no default bridge: nothing to judge
    this.extra = next;
    this.metrics.invalidate();
  }

  stop(): Promise<void> {
    this.controller.abort();
    if (this.timer) clearInterval(this.timer);
    this.metrics.stop();
    return Promise.resolve();
  }

  health(): ComponentHealth {
    return { ok: true };
  }
}

/** FEATURES factory: undefined when `security.enabled` or `metrics.enabled` is false. */
export function securityFeature(ctx: AgentContext): Component | undefined {
  if (!ctx.config.security.enabled || !ctx.config.metrics.enabled) return undefined;
  let mountinfo = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // not on Linux, or /proc hidden: the agent's own container is not recognised
  }
  return new SecurityFeature(ctx, mountinfo);
}
