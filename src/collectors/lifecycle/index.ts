/**
 * Lifecycle component: follows the inventory's raw daemon events and snapshots, serves
 * restart / exit / OOM / state / health metrics and exports finished runs as OTLP spans.
 */
import type { AgentContext } from '../../agent.js';
import type { Component, ComponentHealth } from '../../component.js';
import type { Config } from '../../config/schema.js';
import type { ApiContainerInspect } from '../../docker/api-types.js';
import { containerSelection, type ContainerPredicate } from '../../docker/selection.js';
import { METRICS_OPT_OUT_LABEL } from '../metrics-feature.js';
import { HEALTH_STATES, type DockerEvent, type HealthState } from '../../docker/types.js';
import {
  createRunSpanExporter,
  type ContainerRun,
  type RunSpanExporter,
} from '../../exporters/otlp-traces.js';
import type { ExpositionProvider } from '../../exporters/prometheus.js';
import { Counter } from 'prom-client';
import { OnceLogger } from '../../util/logger.js';
import { formatValue, header, labelPairs, sanitizeLabelName } from '../exposition.js';
import { buildRedactor } from '../../logs/processing/processor.js';
import type { Redactor } from '../../logs/processing/redact.js';
import { LogsAuditSink } from './audit-logs.js';
import { ExecAuditor, type ApiExecInspect, type AuditSink } from './exec-audit.js';
import {
  EXEC_ACTIONS,
  HEALTH_SET,
  LifecycleTracker,
  STATE_SET,
  type TrackedContainer,
} from './tracker.js';

export { LifecycleTracker } from './tracker.js';

/** Metric family names served by this component. */
export const LIFECYCLE_METRICS = {
  restarts: 'container_restarts_total',
  oom: 'container_oom_events_total',
  lastExitCode: 'container_last_exit_code',
  lastTermination: 'container_last_termination_time_seconds',
  lastExitOom: 'container_last_exit_oom_killed',
  state: 'container_state',
  health: 'container_health_state',
  failingStreak: 'container_health_failing_streak',
  imagePulls: 'docker_engine_image_pulls_total',
  imageDeletes: 'docker_engine_image_deletes_total',
  exec: 'container_exec_total',
} as const;

export interface LifecycleRenderOptions {
  /** `1` or `2`: which cgroup path becomes the `id` label. */
  cgroupVersion: () => string;
  /** Container label keys copied as container_label_<sanitized>. */
  labelAllowlist: readonly string[];
  oomTotal: (id: string) => number;
  disabled?: ReadonlySet<string>;
  imagePulls: () => number;
  imageDeletes: () => number;
  /**
   * Which containers get per-container series (metrics.include_containers / exclude_containers
   * and the harbormaster.metrics.enabled label, as for the cgroup families); default: all.
   */
  selected?: ContainerPredicate;
}

/** Prometheus text of the lifecycle families. */
export function renderLifecycle(
  containers: readonly TrackedContainer[],
  o: LifecycleRenderOptions,
): string {
  const v2 = o.cgroupVersion() === '2';
  // two keys can sanitize to one label name (a.b and a_b): the first wins, as in containers.ts
  const seen = new Set<string>();
  const allow = o.labelAllowlist
    .map((k) => [k, `container_label_${sanitizeLabelName(k)}`] as const)
    .filter(([, label]) => !seen.has(label) && Boolean(seen.add(label)));
  const rows = containers
    .filter((c) => c.info && (!o.selected || o.selected(c.info)))
    .map((c) => {
      const info = c.info!;
      const base: [string, string][] = [
        ['id', v2 ? info.cgroup.v2 : info.cgroup.v1],
        ['image', info.image],
        ['name', info.name],
      ];
      for (const [key, label] of allow) base.push([label, info.labels[key] ?? '']);
      return { c, base };
    });
  const on = (name: string) => !o.disabled?.has(name);
  let out = '';
  const family = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    sample: (c: TrackedContainer) => number | undefined,
  ) => {
    if (!on(name)) return;
    let body = '';
    for (const { c, base } of rows) {
      const v = sample(c);
      if (v === undefined) continue;
      body += `${name}{${labelPairs(base)}} ${formatValue(v)}\n`;
    }
    out += header(name, type, help) + body;
  };
  const M = LIFECYCLE_METRICS;
  family(
    M.restarts,
    'counter',
    'Restarts of the container observed by the agent (restart policy, docker restart, stop then start); starts at 0 when the agent first sees the container.',
    (c) => c.restarts,
  );
  family(
    M.oom,
    'counter',
    'OOM kills of processes in the container seen by the agent (daemon oom events and cgroup counters, without double counting).',
    (c) => o.oomTotal(c.id),
  );
  family(M.lastExitCode, 'gauge', 'Exit code of the last run of the container.', (c) =>
    c.lastExit ? c.lastExit.code : undefined,
  );
  family(
    M.lastTermination,
    'gauge',
    'When the last run of the container ended, in seconds since the epoch.',
    (c) => (c.lastExit ? c.lastExit.timeMs / 1000 : undefined),
  );
  family(
    M.lastExitOom,
    'gauge',
    'Whether the last run of the container ended with an OOM kill (1) or not (0).',
    (c) => (c.lastExit ? (c.lastExit.oom ? 1 : 0) : undefined),
  );
  const stateSet = (
    name: string,
    help: string,
    values: readonly string[],
    cur: (c: TrackedContainer) => string,
  ) => {
    if (!on(name)) return;
    let body = '';
    for (const { c, base } of rows) {
      const now = cur(c);
      for (const s of values)
        body += `${name}{${labelPairs([...base, ['state', s]])}} ${s === now ? 1 : 0}\n`;
    }
    out += header(name, 'gauge', help) + body;
  };
  stateSet(
    M.state,
    'Container state as a state set: 1 for the current state (created, running, paused, restarting, exited, dead), 0 for the others.',
    STATE_SET,
    (c) => c.state,
  );
  stateSet(
    M.health,
    'Container health as a state set: 1 for the current health (none, starting, healthy, unhealthy), 0 for the others.',
    HEALTH_SET,
    (c) => c.health,
  );
  family(
    M.failingStreak,
    'gauge',
    'Consecutive failed health checks of the container (0 without a health check).',
    (c) => c.failingStreak,
  );
  if (on(M.exec)) {
    let body = '';
    for (const { c, base } of rows)
      for (const a of EXEC_ACTIONS)
        body += `${M.exec}{${labelPairs([...base, ['action', a]])}} ${c.execs?.[a] ?? 0}\n`;
    out +=
      header(
        M.exec,
        'counter',
        'docker exec events of the container seen by the agent, by action (exec_create, exec_start, exec_die); health-check probes are not counted. CIS 5.22/5.23: the exec audit records say who ran what.',
      ) + body;
  }
  if (on(M.imagePulls))
    out +=
      header(
        M.imagePulls,
        'counter',
        'Image pulls reported by the Docker daemon since the agent started.',
      ) + `${M.imagePulls} ${formatValue(o.imagePulls())}\n`;
  if (on(M.imageDeletes))
    out +=
      header(
        M.imageDeletes,
        'counter',
        'Image deletions reported by the Docker daemon since the agent started.',
      ) + `${M.imageDeletes} ${formatValue(o.imageDeletes())}\n`;
  return out;
}

function labelAllowlist(ctx: AgentContext): string[] {
  const m = ctx.config.metrics as { label_allowlist?: unknown } | undefined;
  const list = m?.label_allowlist;
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The metrics selection of the configuration, the same predicate the cgroup families use
 * (collectors/metrics-feature.ts): lifecycle series follow metrics.include_containers /
 * exclude_containers and the harbormaster.metrics.enabled=false label too.
 */
export function lifecycleSelection(metrics: Config['metrics']): ContainerPredicate {
  return containerSelection({
    include: metrics.include_containers,
    exclude: metrics.exclude_containers,
    optOutLabel: METRICS_OPT_OUT_LABEL,
  });
}

function disabledMetrics(ctx: AgentContext): Set<string> {
  const m = ctx.config.metrics as { disabled_metrics?: unknown } | undefined;
  const list = m?.disabled_metrics;
  return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : []);
}

/**
 * How long the span of a run that an unexplained SIGKILL ended waits for Docker's OOM verdict:
 * containerd reports the OOM and the exit on separate paths, so on a busy host the `oom` event
 * comes after `die`.
 */
export const OOM_VERDICT_HOLD_MS = 10_000;

export class LifecycleCollector implements Component, ExpositionProvider {
  readonly name = 'lifecycle';
  readonly tracker: LifecycleTracker;
  private readonly ctx: AgentContext;
  /** The OTLP span exporter, when traces are on (read by the status page). */
  readonly spans: RunSpanExporter | undefined;
  private readonly once: OnceLogger;
  private readonly disabled: Set<string>;
  private readonly selected: ContainerPredicate;
  private unsubscribe: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pulls = 0;
  private deletes = 0;
  private stopped = false;
  private readonly probeReads = new Map<string, NodeJS.Timeout>();
  /** Spans of runs ended by an unexplained SIGKILL, waiting for Docker's OOM verdict. */
  private readonly heldRuns = new Map<ContainerRun, NodeJS.Timeout>();
  private controller = new AbortController();
  private readonly auditSink: AuditSink | undefined;
  private readonly auditor: ExecAuditor | undefined;

  private readonly oomVerdictHoldMs: number;

  constructor(ctx: AgentContext, opts: { oomVerdictHoldMs?: number } = {}) {
    this.ctx = ctx;
    this.oomVerdictHoldMs = opts.oomVerdictHoldMs ?? OOM_VERDICT_HOLD_MS;
    const log = ctx.logger.child({ component: 'lifecycle' });
    this.once = new OnceLogger(log);
    this.disabled = disabledMetrics(ctx);
    this.selected = lifecycleSelection(ctx.config.metrics);
    this.spans = createRunSpanExporter({
      config: ctx.config,
      identity: ctx.identity,
      containerInfo: (id) => ctx.inventory.get(id),
      labelAllowlist: () => this.allow,
      logger: ctx.logger,
      registry: ctx.metrics.registry,
      wrapExporter: ctx.wrapSpanExporter,
    });
    // built now: a pattern the engine cannot take fails at startup, not at the first exec
    this.redactor();
    const redact = (s: string): string => this.redactor().redact(s).s;
    this.tracker = new LifecycleTracker({
      redact,
      removedGraceMs: ctx.config.lifecycle.removed_grace_seconds * 1000,
      spanLabels: (info) => {
        const out: Record<string, string> = {};
        for (const k of this.allow) if (info.labels[k] !== undefined) out[k] = info.labels[k];
        return out;
      },
      hooks: {
        runEnded: (run) => this.exportRun(run),
        oomEvent: (id, startedAt) => ctx.oom.noteEvent(id, startedAt),
        oomVerdict: (id, startedAt) => ctx.oom.noteVerdict(id, startedAt),
        track: (id, startedAt) => ctx.oom.track(id, startedAt),
        forget: (id) => ctx.oom.delete(id),
        imagePull: () => (this.pulls += 1),
        imageDelete: () => (this.deletes += 1),
      },
    });
    ctx.metrics.addProvider(this);
    const intake = ctx.config.security.exec_audit ? ctx.logIntake() : undefined;
    if (ctx.config.security.exec_audit && !intake)
      log.info(
        'docker exec is not audited: exec audit records go through log shipping, which is off (logs.enabled, OTEL_LOGS_EXPORTER=none or no logs endpoint).',
      );
    if (intake) {
      this.auditSink = new LogsAuditSink({
        intake,
        identity: ctx.identity,
        labelAllowlist: () => this.ctx.config.logs.label_allowlist,
        logger: ctx.logger,
        registry: ctx.metrics.registry,
      });
      const errors = new Counter({
        name: 'harbormaster_exec_audit_errors_total',
        help: 'Problems building exec audit records, by reason (inspect_failed: user/privileged/tty unknown; forgotten: too many execs open; no_exec_id: the daemon sends no execID).',
        labelNames: ['reason'],
        registers: [ctx.metrics.registry],
      });
      this.auditor = new ExecAuditor({
        inspectExec: (id, signal) =>
          ctx.docker.get<ApiExecInspect>(`/exec/${encodeURIComponent(id)}/json`, undefined, signal),
        container: (id) => ctx.inventory.get(id),
        sink: this.auditSink,
        redact,
        logger: ctx.logger,
        errors,
      });
      log.info('docker exec into containers is audited as log records (with the container logs).');
    }
    if (this.spans)
      log.info(
        { url: this.spans.url, protocol: this.spans.protocol },
        'Container runs are exported as OTLP spans.',
      );
  }

  /**
   * The label allowlist and the redaction rules in force. SIGHUP replaces ctx.config (agent.ts
   * reload(), with the settings that could not change live kept at their old values), so they are
   * read from it at each use, as the status page does: a narrowed allowlist hides a label from
   * the next scrape and the next span, new redaction rules mask the next exec command.
   */
  private get allow(): string[] {
    return labelAllowlist(this.ctx);
  }

  private redactorFor: { cfg: Config['logs']['processing']['redaction']; r: Redactor } | undefined;

  /** Built once per configuration (a reload brings a new redaction object). */
  private redactor(): Redactor {
    const cfg = this.ctx.config.logs.processing.redaction;
    if (this.redactorFor?.cfg !== cfg) this.redactorFor = { cfg, r: buildRedactor(cfg) };
    return this.redactorFor.r;
  }

  render(): string {
    try {
      return renderLifecycle(this.tracker.served(), {
        cgroupVersion: () => this.ctx.inventory.engine()?.cgroupVersion ?? '1',
        labelAllowlist: this.allow,
        oomTotal: (id) => this.ctx.oom.total(id),
        disabled: this.disabled,
        imagePulls: () => this.pulls,
        imageDeletes: () => this.deletes,
        selected: this.selected,
      });
    } catch (err) {
      this.once.error('render', { err }, 'Rendering lifecycle metrics failed; they are left out.');
      return '';
    }
  }

  start(_signal: AbortSignal): Promise<void> {
    const inv = this.ctx.inventory;
    for (const c of inv.list())
      this.guard('seed', () => this.tracker.onInventory({ type: 'added', container: c }, true));
    this.unsubscribe.push(
      inv.onDockerEvent((ev, replayed) =>
        this.guard('event', () => {
          // A replayed event (from before the subscription) is already in the re-list the
          // tracker reconciled with (restart counts, last exit, OOM); applied now, it would end
          // or mark the run that re-list opened. The logs component takes it (to read or count
          // the container's log); runs and exec audits do not.
          if (replayed) return;
          this.tracker.onDockerEvent(ev);
          this.auditor?.onDockerEvent(ev);
          this.afterProbe(ev);
        }),
      ),
      inv.subscribe((ev) =>
        this.guard('snapshot', () => this.tracker.onInventory(ev, !inv.ready())),
      ),
    );
    const every = Math.max(
      1000,
      Math.min(30_000, this.ctx.config.lifecycle.removed_grace_seconds * 500),
    );
    this.timer = setInterval(() => this.guard('sweep', () => this.tracker.sweep()), every);
    this.timer.unref();
    return Promise.resolve();
  }

  /**
   * Health probes run as execs and the daemon only sends `health_status` when the status changes,
   * so after a probe of a health-checked container its failing streak is read (one inspect per
   * probe, coalesced; shortly after exec_die so the probe result is recorded).
   */
  private afterProbe(ev: DockerEvent): void {
    if (ev.Type !== 'container' || !ev.Action?.startsWith('exec_die')) return;
    const id = ev.Actor?.ID;
    const c = id ? this.tracker.get(id) : undefined;
    if (!id || !c || c.health === 'none' || this.probeReads.has(id) || this.stopped) return;
    const t = setTimeout(() => {
      void this.readHealth(id).finally(() => this.probeReads.delete(id));
    }, 200);
    t.unref();
    this.probeReads.set(id, t);
  }

  private async readHealth(id: string): Promise<void> {
    try {
      const c = await this.ctx.docker.get<ApiContainerInspect>(
        `/containers/${id}/json`,
        undefined,
        this.controller.signal,
      );
      const h = c.State?.Health;
      if (!h) return;
      const status = (HEALTH_STATES as readonly string[]).includes(h.Status ?? '')
        ? (h.Status as HealthState)
        : 'none';
      this.tracker.onHealthProbe(id, status, h.FailingStreak ?? 0);
    } catch (err) {
      if (this.stopped) return;
      this.once.warn(
        'health-read',
        { id, err: (err as Error).message },
        'Reading the health of a container after a probe failed; it is read again after the next probe.',
      );
    }
  }

  private guard(cause: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.once.error(cause, { err }, 'Handling a container lifecycle change failed; carrying on.');
    }
  }

  /**
   * Sends a finished run's span; one that a SIGKILL nobody sent through the API ended (exit code
   * 137 without a `kill` event: the kernel's OOM killer, or a kill -9 on the host) waits
   * OOM_VERDICT_HOLD_MS first, for Docker's OOM verdict that can come after `die` (the tracker
   * adds it to the held span: `docker.container.oom_killed` and an `oom` event).
   */
  private exportRun(run: ContainerRun): void {
    if (!this.spans) return;
    const unexplainedKill =
      run.exitCode === 137 && !run.oomKilled && !run.events.some((e) => e.name === 'kill');
    if (!unexplainedKill || this.stopped) {
      this.spans.export(run);
      return;
    }
    const t = setTimeout(() => {
      this.heldRuns.delete(run);
      this.spans?.export(run);
    }, this.oomVerdictHoldMs);
    t.unref();
    this.heldRuns.set(run, t);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // held runs go out now, with what is known
    for (const [run, t] of this.heldRuns) {
      clearTimeout(t);
      this.spans?.export(run);
    }
    this.heldRuns.clear();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (this.timer) clearInterval(this.timer);
    this.controller.abort();
    for (const t of this.probeReads.values()) clearTimeout(t);
    this.probeReads.clear();
    this.auditor?.stop();
    // finished runs still queued are sent; runs still going are not given a fake end
    await Promise.all([this.spans?.shutdown(), this.auditSink?.shutdown?.()]);
  }

  health(): ComponentHealth {
    return { ok: true, detail: this.spans ? `spans to ${this.spans.url}` : 'traces off' };
  }
}

/** FEATURES factory. */
export function lifecycleFeature(ctx: AgentContext): Component | undefined {
  if (!ctx.config.lifecycle.enabled) return undefined;
  return new LifecycleCollector(ctx);
}
