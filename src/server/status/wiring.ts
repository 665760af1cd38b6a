/**
 * Assembles the status page's sources from the agent's parts. Called by the agent (the
 * composition root) with what it built; reads only, never changes them.
 */
import type { AgentContext } from '../../agent.js';
import type { Component, ComponentHealth } from '../../component.js';
import type { Config } from '../../config/schema.js';
import { LifecycleCollector } from '../../collectors/lifecycle/index.js';
import { MetricsFeature } from '../../collectors/metrics-feature.js';
import { SecurityFeature } from '../../collectors/security.js';
import { SECURITY_CHECKS, type SecurityCheck } from '../../collectors/security-posture.js';
import { resolveOtlpSignal } from '../../exporters/otlp-env.js';
import { VERSION } from '../../version.js';
import { UsageSampler, ringSlots } from './index.js';
import type { OtlpEndpointStatus, SecurityFinding, StatusSources } from './model.js';
import { telemetryLogSource } from './log-source.js';
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
  const security = components.find((c): c is SecurityFeature => c instanceof SecurityFeature);
  const logsOn = components.some((c) => c.name === 'logs');
  const logs = logsOn ? telemetryLogSource(ctx.logTelemetry) : undefined;
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
  const logsEndpoint = logsOn ? otlpLogsEndpoint(ctx.config) : undefined;
  const otlp = (): OtlpEndpointStatus[] => {
    const out: OtlpEndpointStatus[] = [];
    if (logsEndpoint) {
      const h = componentHealth().logs;
      const snap = logs?.snapshot();
      const lastError = snap?.lastError ?? (h && !h.ok ? (h.detail ?? 'failing') : null);
      out.push({
        signal: 'logs',
        ...logsEndpoint,
        ok: lastError === null,
        lastSuccessAt: snap?.lastSuccessAt ?? null,
        lastError,
      });
    }
    const spans = lifecycle?.spans;
    if (spans)
      out.push({
        signal: 'traces',
        url: spans.url,
        protocol: spans.protocol,
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
    logs,
    findings: security
      ? (id) => {
          const f = security.metrics.findings(id);
          if (!f) return undefined;
          const row = (check: SecurityCheck, allowed: boolean): SecurityFinding => ({
            check,
            ...SECURITY_CHECKS[check],
            allowed,
          });
          return [...f.failed.map((c) => row(c, false)), ...f.allowed.map((c) => row(c, true))];
        }
      : undefined,
    otlp,
    // read on every request: SIGHUP replaces ctx.config, and a narrowed allowlist must hide the
    // label here at once, as on /containers and /metrics
    get labelAllowlist() {
      return ctx.config.metrics.label_allowlist;
    },
  };
  return { sampler, sources };
}

/**
 * Where log records really go: the endpoint and protocol the logs exporter was built with (the
 * same resolver as agent.ts buildLogExporter: `_LOGS_` variables, gRPC's host:port, ...);
 * undefined for NDJSON or when OTLP logs are off.
 */
export function otlpLogsEndpoint(config: Config): { url: string; protocol: string } | undefined {
  if (config.logs.exporter === 'ndjson') return undefined;
  try {
    const s = resolveOtlpSignal(config.otlp, 'logs');
    return s ? { url: s.url, protocol: s.protocol } : undefined;
  } catch {
    return undefined; // the exporter could not be built either: agent start failed with the reason
  }
}
