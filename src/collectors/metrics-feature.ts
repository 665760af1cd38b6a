/**
 * The metrics feature (issue 3): per-container cgroup metrics, engine metrics and host facts,
 * wired into the agent's /metrics.
 */
import type { AgentContext } from '../agent.js';
import type { Component, ComponentHealth } from '../component.js';
import { ContainerMetrics } from './containers.js';
import { EngineMetrics } from './engine.js';
import { HostMetrics } from './host.js';

export class MetricsFeature implements Component {
  readonly name = 'metrics';
  readonly containers: ContainerMetrics;
  private readonly engine: EngineMetrics;
  private readonly host: HostMetrics;
  private startError: string | undefined;

  constructor(ctx: AgentContext) {
    const cfg = ctx.config.metrics;
    this.containers = new ContainerMetrics({
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
    });
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
    this.engine.start();
    await this.host.start();
  }

  stop(): Promise<void> {
    this.containers.stop();
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
