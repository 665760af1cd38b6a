/**
 * Assembles the status page's sources from the agent's parts. Called by the agent (the
 * composition root) with what it built; reads only, never changes them.
 */
import type { AgentContext } from '../../agent.js';
import type { Component, ComponentHealth } from '../../component.js';
import { LifecycleCollector } from '../../collectors/lifecycle/index.js';
import { MetricsFeature } from '../../collectors/metrics-feature.js';
import { otlpLogsUrl } from '../../exporters/otlp-logs.js';
import { VERSION } from '../../version.js';
import { UsageSampler, ringSlots } from './index.js';
import type { OtlpEndpointStatus, StatusSources } from './model.js';
import { RegistryLogSource } from './registry-log-source.js';
import { UsageRing } from './ring.js';

export interface StatusFeature {
  sampler: UsageSampler;
  sources: StatusSources;
}

/** Undefined when `status.enabled` is false. */
export function createStatusFeature(
  ctx: AgentContext,
  components: readonly Component[],
  componentHealth: () => Record<string, ComponentHealth>,
): StatusFeature | undefined {
  const cfg = ctx.config.status;
  if (!cfg.enabled) return undefined;
  const metrics = components.find((c): c is MetricsFeature => c instanceof MetricsFeature);
  const lifecycle = components.find(
    (c): c is LifecycleCollector => c instanceof LifecycleCollector,
  );
  const logsOn = components.some((c) => c.name === 'logs');
  const ring = new UsageRing(ringSlots(cfg.history_minutes, cfg.sample_interval_seconds));
  const sampler = new UsageSampler({
    ring,
    sample: (maxAgeMs) =>
      metrics
        ? metrics.containers.usage(maxAgeMs)
        : Promise.resolve({ at: Date.now(), containers: [] }),
    intervalMs: cfg.sample_interval_seconds * 1000,
    logger: ctx.logger,
  });
  const { inventory, docker, oom } = ctx;
  const logsUrl = otlpLogsUrl(ctx.config.otlp);
  const otlp = (): OtlpEndpointStatus[] => {
    const out: OtlpEndpointStatus[] = [];
    if (logsOn && logsUrl && ctx.config.logs.exporter !== 'ndjson') {
      const h = componentHealth().logs;
      out.push({
        signal: 'logs',
        url: logsUrl,
        ok: h?.ok ?? false,
        lastSuccessAt: null,
        lastError: h && !h.ok ? (h.detail ?? 'failing') : null,
      });
    }
    const spans = lifecycle?.spans;
    if (spans)
      out.push({
        signal: 'traces',
        url: spans.url,
        ok: spans.lastError === undefined,
        lastSuccessAt: spans.lastSuccessAt ?? null,
        lastError: spans.lastError ?? null,
      });
    return out;
  };
  const startedAt = Date.now();
  const sources: StatusSources = {
    version: VERSION,
    hostName: ctx.hostName,
    startedAt,
    containers: () => inventory.list(),
    container: (id) => inventory.get(id),
    daemon: () => {
      const h = inventory.health();
      const engine = inventory.engine();
      return {
        url: docker.endpoint.url,
        connected: inventory.ready(),
        apiVersion: docker.apiVersion ?? engine?.apiVersion ?? null,
        serverVersion: engine?.serverVersion ?? null,
        detail: h.detail ?? null,
      };
    },
    components: componentHealth,
    lifecycle: lifecycle
      ? (id) => {
          const t = lifecycle.tracker.get(id);
          if (!t) return undefined;
          return {
            restarts: t.restarts,
            runs: t.runs,
            lastExit: t.lastExit
              ? { code: t.lastExit.code, at: t.lastExit.timeMs, oomKilled: t.lastExit.oom }
              : null,
            oomKills: oom.total(id),
          };
        }
      : undefined,
    usage: ring,
    usageIntervalSeconds: cfg.sample_interval_seconds,
    logs: logsOn ? new RegistryLogSource(ctx.metrics.registry) : undefined,
    otlp,
    labelAllowlist: ctx.config.metrics.label_allowlist,
  };
  return { sampler, sources };
}
