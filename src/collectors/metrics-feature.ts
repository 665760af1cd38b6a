/**
 * The metrics feature (issue 3): per-container cgroup metrics, engine metrics and host facts,
 * wired into the agent's /metrics.
 */
import type { AgentContext } from '../agent.js';
import type { Component, ComponentHealth } from '../component.js';
import { containerSelection } from '../docker/selection.js';
import { ContainerMetrics } from './containers.js';
import { EngineMetrics } from './engine.js';
import { WritableLayers } from './fs-usage.js';
import { HostMetrics } from './host.js';
import { MachineMetrics } from './machine.js';

/** The container label that leaves one container out of metrics (`=false`). */
export const METRICS_OPT_OUT_LABEL = 'harbormaster.metrics.enabled';

export class MetricsFeature implements Component {
  readonly name = 'metrics';
  readonly containers: ContainerMetrics;
  private readonly engine: EngineMetrics;
  private readonly host: HostMetrics;
  private readonly layers: WritableLayers | undefined;
  private startError: string | undefined;

  constructor(ctx: AgentContext) {
    const cfg = ctx.config.metrics;
    const off = new Set<string>(cfg.disabled_metrics);
    const fsOn =
      cfg.fs_interval_seconds > 0 &&
      !off.has('fs_usage') &&
      [
        'container_fs_usage_bytes',
        'container_fs_limit_bytes',
        'container_fs_inodes_total',
        'container_fs_inodes_free',
      ].some((n) => !off.has(n));
    // assigned after the collector it reads from
    let layers: WritableLayers | undefined;
    this.containers = new ContainerMetrics({
      selection: containerSelection({
        include: cfg.include_containers,
        exclude: cfg.exclude_containers,
        optOutLabel: METRICS_OPT_OUT_LABEL,
      }),
      perCpu: cfg.per_cpu,
      fsUsage: fsOn
        ? {
            usage: (id) => layers?.usage(id),
            filesystem: () => layers?.filesystem(),
          }
        : undefined,
      inventory: ctx.inventory,
      logger: ctx.logger,
      registry: ctx.metrics.registry,
      // the OOM counter is served (and its entries forgotten) by lifecycle: feed it only then
      oom: ctx.config.lifecycle.enabled ? ctx.oom : undefined,
      cgroupRoot: ctx.config.cgroup_root,
      procRoot: ctx.config.proc_root,
      minIntervalMs: cfg.min_interval_seconds * 1000,
      labelAllowlist: cfg.label_allowlist,
      disabled: cfg.disabled_metrics,
      includeLoopback: cfg.include_loopback,
      // descriptors for HTTP clients are kept out of the collector's open-file budget
      httpConnections: ctx.config.http.max_connections,
    });
    if (fsOn) {
      layers = new WritableLayers({
        dockerRoot: ctx.config.docker_root,
        procRoot: ctx.config.proc_root,
        logger: ctx.logger,
        registry: ctx.metrics.registry,
        intervalMs: cfg.fs_interval_seconds * 1000,
        budgetMs: cfg.fs_walk_budget_seconds * 1000,
        containers: () => this.containers.activeIds(),
      });
    }
    this.layers = layers;
    this.engine = new EngineMetrics({
      docker: ctx.docker,
      inventory: ctx.inventory,
      registry: ctx.metrics.registry,
      logger: ctx.logger,
      countsIntervalMs: cfg.engine_interval_seconds * 1000,
      diskUsageIntervalMs: cfg.engine_disk_usage_interval_seconds * 1000,
      disabled: cfg.disabled_metrics,
    });
    this.host = new HostMetrics({
      registry: ctx.metrics.registry,
      logger: ctx.logger,
      dockerRoot: ctx.config.docker_root,
      intervalMs: cfg.host_interval_seconds * 1000,
      disabled: cfg.disabled_metrics,
    });
    ctx.metrics.addProvider(this.containers);
    const machine = new MachineMetrics(ctx.config.proc_root, cfg.disabled_metrics);
    ctx.metrics.addProvider({ render: () => machine.render() });
    ctx.logger.info(
      {
        cgroupMode: this.containers.layout.mode,
        cgroupRoot: ctx.config.cgroup_root,
        procRoot: ctx.config.proc_root,
      },
      'Container metrics read from cgroupfs.',
    );
  }

  async start(): Promise<void> {
    this.containers.start();
    this.layers?.start();
    this.engine.start();
    await this.host.start();
  }

  stop(): Promise<void> {
    this.containers.stop();
    this.layers?.stop();
    this.engine.stop();
    this.host.stop();
    return Promise.resolve();
  }

  /** SIGHUP: the settings that can change live. */
  reload(opts: { labelAllowlist: readonly string[] }): void {
    this.containers.setLabelAllowlist(opts.labelAllowlist);
  }

  health(): ComponentHealth {
    return this.startError ? { ok: false, detail: this.startError } : { ok: true };
  }
}

/** FEATURES entry: undefined when `metrics.enabled` is false. */
export function metricsFeature(ctx: AgentContext): Component | undefined {
  return ctx.config.metrics.enabled ? new MetricsFeature(ctx) : undefined;
}
