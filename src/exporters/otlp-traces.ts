/**
 * Container runs as OTLP spans. Each finished run becomes one ReadableSpan built here (with the
 * run's real start and end times and a trace id derived from the container id, so a container's
 * runs form one trace across agent restarts) and is handed to the SDK's BatchSpanProcessor, which
 * batches and sends it with the OTLP exporter of the configured protocol (gRPC, HTTP protobuf or
 * HTTP JSON; settings from src/exporters/otlp-env.ts). The span's resource is the container's
 * identity (src/docker/identity.ts: service.name from compose/swarm labels, host.name from the
 * daemon, OTEL_RESOURCE_ATTRIBUTES). A batch the receiver cannot take right now (UNAVAILABLE,
 * 429/503, connection refused...) is retried with backoff for lifecycle.traces_retry_max_seconds;
 * permanent failures are dropped and counted.
 *
 * Span attributes the semantic conventions have no name for live in our own namespaces:
 *   docker.container.oom_killed     Docker's State.OOMKilled of the run
 *   harbormaster.run.exit_signal    signal that ended the run (from the kill event), e.g. SIGKILL
 *   harbormaster.run.attempt        1 for the first run the agent saw, then 2, 3… (per agent)
 */
import { createHash } from 'node:crypto';
import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type HrTime,
  type SpanContext,
} from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type TimedEvent,
} from '@opentelemetry/sdk-trace';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { ResourceIdentity } from '../docker/identity.js';
import { imageNameAndTags } from '../docker/image-ref.js';
import type { ContainerInfo } from '../docker/types.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import { sleep } from '../util/sleep.js';
import { VERSION } from '../version.js';
import { otlpSignalDisabled, resolveOtlpSignal, type OtlpSignalSettings } from './otlp-env.js';
import { classifyGrpcError, grpcCredentials, grpcMetadata, grpcStatusName } from './otlp-grpc.js';

/** One finished run of a container, as the lifecycle collector saw it. */
export interface ContainerRun {
  containerId: string;
  containerName: string;
  /** Image reference, e.g. `busybox:latest`. */
  image: string;
  /** Allowlisted container labels (become `container.label.<key>`). */
  labels?: Readonly<Record<string, string>>;
  /** Start of the run, ms since the epoch (fractional ms allowed). */
  startMs: number;
  /** End of the run (the `die` event), ms since the epoch. */
  endMs: number;
  exitCode: number;
  /** Signal that ended the run, e.g. `SIGKILL`, when known. */
  signal?: string;
  oomKilled: boolean;
  /** 1 for the first run the agent saw, then 2, 3… (per agent lifetime). */
  attempt?: number;
  events: readonly RunEvent[];
}

export interface RunEvent {
  name: string;
  timeMs: number;
  attributes?: Attributes;
}

/** Trace id of a container: the first 32 hex digits of its id (sha256 of it for non-hex ids). */
export function traceIdFor(containerId: string): string {
  const id = containerId.toLowerCase();
  if (/^[0-9a-f]{32,}$/.test(id) && !/^0{32}/.test(id)) return id.slice(0, 32);
  return createHash('sha256').update(`container:${containerId}`).digest('hex').slice(0, 32);
}

/** Span id of a run: derived from the container id and the run's start, so it is stable too. */
export function spanIdFor(containerId: string, startMs: number): string {
  const h = createHash('sha256')
    .update(`run:${containerId}:${startMs.toFixed(3)}`)
    .digest('hex');
  const s = h.slice(0, 16);
  return /^0{16}$/.test(s) ? '0000000000000001' : s;
}

export function msToHrTime(ms: number): HrTime {
  const secs = Math.floor(ms / 1000);
  const nanos = Math.min(999_999_999, Math.max(0, Math.round((ms - secs * 1000) * 1e6)));
  return [secs, nanos];
}

/** Builds the ReadableSpan of a finished run. */
export function runToSpan(run: ContainerRun, resource: Resource): ReadableSpan {
  const ctx: SpanContext = {
    traceId: traceIdFor(run.containerId),
    spanId: spanIdFor(run.containerId, run.startMs),
    traceFlags: TraceFlags.SAMPLED,
  };
  const { name: imageName, tags } = imageNameAndTags(run.image);
  const attributes: Attributes = {
    'container.id': run.containerId,
    'container.name': run.containerName,
    'container.image.name': imageName,
    'container.image.tags': tags,
    'container.runtime.name': 'docker',
    'process.exit.code': run.exitCode,
    'docker.container.oom_killed': run.oomKilled,
  };
  if (run.signal) attributes['harbormaster.run.exit_signal'] = run.signal;
  if (run.attempt !== undefined) attributes['harbormaster.run.attempt'] = run.attempt;
  for (const [k, v] of Object.entries(run.labels ?? {})) attributes[`container.label.${k}`] = v;
  const error = run.exitCode !== 0 || run.oomKilled;
  const endMs = Math.max(run.endMs, run.startMs);
  const events: TimedEvent[] = run.events.map((e) => ({
    name: e.name,
    time: msToHrTime(e.timeMs),
    attributes: e.attributes ?? {},
    droppedAttributesCount: 0,
  }));
  const durMs = endMs - run.startMs;
  return {
    name: `container run ${run.containerName}`,
    kind: SpanKind.INTERNAL,
    spanContext: () => ctx,
    startTime: msToHrTime(run.startMs),
    endTime: msToHrTime(endMs),
    duration: msToHrTime(durMs),
    status: error
      ? {
          code: SpanStatusCode.ERROR,
          message: run.oomKilled ? 'OOM killed' : `exited with code ${run.exitCode}`,
        }
      : { code: SpanStatusCode.UNSET },
    attributes,
    links: [],
    events,
    ended: true,
    resource,
    instrumentationScope: { name: 'harbormaster.lifecycle', version: VERSION },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** Bounded reason of a failed export. */
export function failureReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const str = (v: unknown): string =>
    typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  const text = `${str(e?.message)} ${str(e?.cause?.code)} ${str(e?.code)}`;
  if (typeof e?.code === 'number' && e.code < 100 && /^\d+ /.test(str(e.message)))
    return `grpc_${grpcStatusName(e.code).toLowerCase()}`;
  if (/ECONNREFUSED/.test(text)) return 'connection_refused';
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return 'dns';
  if (/timeout|timed out|ETIMEDOUT|ESOCKETTIMEDOUT/i.test(text)) return 'timeout';
  if (/ECONNRESET|EPIPE|socket hang up/i.test(text)) return 'connection_reset';
  const status = typeof e?.code === 'number' ? e.code : undefined;
  if (status !== undefined && status >= 400 && status < 500) return 'http_4xx';
  if (status !== undefined && status >= 500) return 'http_5xx';
  return 'other';
}

function counter(registry: Registry | undefined, name: string, help: string, labelNames: string[]) {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Counter;
  return new Counter({ name, help, labelNames, registers: registry ? [registry] : [] });
}

/** Whether a failed export may succeed later (the receiver is down, overloaded or slow). */
export function isRetryable(err: unknown): { retry: boolean; afterMs?: number } {
  const e = err as { code?: unknown; message?: unknown; metadata?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  if (typeof e?.code === 'number' && e.code < 100 && /^\d+ /.test(message)) {
    const r = classifyGrpcError(e as Parameters<typeof classifyGrpcError>[0]);
    return r.status === 'retryable' ? { retry: true, afterMs: r.retryAfterMs } : { retry: false };
  }
  if (typeof e?.code === 'number' && e.code >= 400)
    return { retry: [408, 429, 502, 503, 504].includes(e.code) };
  const reason = failureReason(err);
  if (['connection_refused', 'connection_reset', 'timeout', 'dns'].includes(reason))
    return { retry: true };
  return { retry: /retryable/i.test(message) };
}

export interface RunSpanExporterOptions {
  config: Config;
  /** Turns containers (and the host) into resource attributes. */
  identity: ResourceIdentity;
  /** The inventory's view of a container (including recently removed ones). */
  containerInfo?: (id: string) => ContainerInfo | undefined;
  /**
   * Container labels exported as `container.label.<key>`; a function is asked for every span
   * (a SIGHUP that changes the allowlist applies to the next span).
   */
  labelAllowlist?: readonly string[] | (() => readonly string[]);
  logger: Logger;
  registry?: Registry;
  /** Resolved traces settings (default: resolved from config.otlp). */
  settings?: OtlpSignalSettings;
  /** Exporter to use instead of OTLP (tests). */
  exporter?: SpanExporter;
  /** Decorates the (counting) exporter, e.g. with the state-dir spool (span-spool.ts). */
  wrapExporter?: (exporter: SpanExporter) => SpanExporter;
}

type GrpcExporterConfig = NonNullable<ConstructorParameters<typeof GrpcTraceExporter>[0]>;

/** The OpenTelemetry exporter of the configured protocol, with TLS from the settings. */
function otlpSpanExporter(s: OtlpSignalSettings): SpanExporter {
  if (s.protocol === 'grpc')
    return new GrpcTraceExporter({
      url: s.url,
      credentials: grpcCredentials(s),
      metadata: grpcMetadata(s.headers),
      compression: s.compression as GrpcExporterConfig['compression'],
      timeoutMillis: s.timeoutMs,
    });
  const config = {
    url: s.url,
    headers: s.headers,
    timeoutMillis: s.timeoutMs,
    compression: s.compression as GrpcExporterConfig['compression'],
    ...(s.secure ? { httpAgentOptions: { ...s.tls } } : {}),
  };
  return s.protocol === 'http/json'
    ? new JsonTraceExporter(config)
    : new ProtoTraceExporter(config);
}

/** Sends finished container runs as spans; a no-op export never blocks or throws. */
export class RunSpanExporter {
  readonly url: string;
  readonly protocol: string;
  private readonly processor: BatchSpanProcessor;
  private readonly once: OnceLogger;
  private readonly log: Logger;
  private readonly failures: Counter;
  private readonly exported: Counter;
  private readonly dropped: Counter;
  private readonly resources = new Map<string, { key: string; resource: Resource }>();
  private readonly stopping = new AbortController();
  private closed = false;
  /** For the status page: when an export last succeeded (ms since the epoch), the last error. */
  lastSuccessAt: number | undefined;
  lastError: string | undefined;

  constructor(
    settings: OtlpSignalSettings,
    private readonly opts: RunSpanExporterOptions,
  ) {
    this.url = settings.url;
    this.protocol = settings.protocol;
    this.log = opts.logger.child({ component: 'otlp-traces' });
    this.once = new OnceLogger(this.log);
    for (const w of settings.warnings) this.log.warn(w);
    this.failures = counter(
      opts.registry,
      'harbormaster_otlp_export_failures_total',
      'OTLP trace export requests that failed, by signal (traces) and bounded reason. Failed log exports are counted in harbormaster_log_export_failures_total.',
      ['signal', 'reason'],
    );
    this.exported = counter(
      opts.registry,
      'harbormaster_otlp_spans_exported_total',
      'Container run spans delivered to the OTLP traces endpoint.',
      [],
    );
    this.dropped = counter(
      opts.registry,
      'harbormaster_otlp_spans_dropped_total',
      'Container run spans given up on: the receiver refused them for good (failure) or stayed unavailable longer than lifecycle.traces_retry_max_seconds (retries_exhausted).',
      ['reason'],
    );
    const inner = opts.exporter ?? otlpSpanExporter(settings);
    const spooled = opts.wrapExporter !== undefined;
    const retryMaxMs = spooled ? 0 : opts.config.lifecycle.traces_retry_max_seconds * 1000;
    const retrying: SpanExporter = {
      export: (spans, done) => {
        this.exportWithRetry(inner, spans, retryMaxMs, spooled).then(done, (err: unknown) =>
          done({ code: ExportResultCode.FAILED, error: err as Error }),
        );
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    };
    // With the state-dir spool (span-spool.ts) a failed batch is tried once and handed to the
    // spool, which keeps it across outages and restarts; without it, it is retried in memory.
    this.processor = new BatchSpanProcessor({
      exporter: opts.wrapExporter?.(retrying) ?? retrying,
      scheduledDelayMillis: Math.round(opts.config.lifecycle.traces_batch_delay_seconds * 1000),
      // one export may retry for retryMaxMs: the processor must not give up on it earlier
      exportTimeoutMillis: retryMaxMs + settings.timeoutMs + 5000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
  }

  private delivered(spans: readonly ReadableSpan[], res: ExportResult): ExportResult {
    if (res.code === ExportResultCode.SUCCESS) {
      this.lastSuccessAt = Date.now();
      this.lastError = undefined;
      this.exported.inc(spans.length);
      this.once.reset('export');
      this.once.reset('retry');
    }
    return res;
  }

  private attempt(inner: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
    return new Promise<ExportResult>((resolve) => {
      try {
        inner.export(spans, resolve);
      } catch (err) {
        resolve({ code: ExportResultCode.FAILED, error: err as Error });
      }
    });
  }

  private async exportWithRetry(
    inner: SpanExporter,
    spans: ReadableSpan[],
    retryMaxMs: number,
    spooled = false,
  ): Promise<ExportResult> {
    const t0 = Date.now();
    let backoff = 1000;
    for (;;) {
      const res = await this.attempt(inner, spans);
      if (res.code === ExportResultCode.SUCCESS) return this.delivered(spans, res);
      const reason = failureReason(res.error);
      this.lastError = `${reason}: ${res.error?.message ?? 'export failed'}`;
      this.failures.inc({ signal: 'traces', reason });
      const { retry, afterMs } = isRetryable(res.error);
      const wait = afterMs ?? backoff;
      if (retry && !this.stopping.signal.aborted && Date.now() - t0 + wait <= retryMaxMs) {
        this.once.warn(
          'retry',
          { url: this.url, reason, err: res.error?.message, spans: spans.length },
          `Exporting container run spans to ${this.url} failed (${reason}); retrying with backoff for up to ${retryMaxMs / 1000} s. Logged once until an export succeeds.`,
        );
        await sleep(wait, this.stopping.signal);
        backoff = Math.min(30_000, backoff * 2);
        continue;
      }
      // a retryable failure goes to the spool, which counts what it cannot keep
      if (spooled && retry) {
        this.once.warn(
          'export',
          { url: this.url, reason, err: res.error?.message, spans: spans.length },
          `Exporting container run spans to ${this.url} failed (${reason}); they are kept in the state-dir spool and sent when the receiver is back. Logged once until an export succeeds.`,
        );
        return res;
      }
      const why = retry ? 'retries_exhausted' : 'failure';
      this.dropped.inc({ reason: why }, spans.length);
      this.once.warn(
        'export',
        { url: this.url, reason, err: res.error?.message, spans: spans.length },
        `Exporting container run spans to ${this.url} failed (${reason}${retry ? ', still failing after retries' : ', not retryable'}); they are dropped and counted in harbormaster_otlp_spans_dropped_total. Logged once until an export succeeds.`,
      );
      // refused for good: counted above; the spool must not keep re-sending it
      return spooled ? { code: ExportResultCode.SUCCESS } : res;
    }
  }

  /** The resource of a run: the container's identity, cached while it does not change. */
  private resourceOf(run: ContainerRun): Resource {
    const info = this.opts.containerInfo?.(run.containerId) ?? {
      id: run.containerId,
      name: run.containerName,
      image: run.image,
      imageId: '',
      labels: run.labels ?? {},
    };
    const la = this.opts.labelAllowlist ?? [];
    const attrs = this.opts.identity.container(info, typeof la === 'function' ? la() : la);
    const key = JSON.stringify(attrs);
    const hit = this.resources.get(run.containerId);
    if (hit?.key === key) return hit.resource;
    if (this.resources.size >= 4096) this.resources.clear();
    const resource = resourceFromAttributes(attrs);
    this.resources.set(run.containerId, { key, resource });
    return resource;
  }

  /** Queues a finished run; never throws. */
  export(run: ContainerRun): void {
    if (this.closed) return;
    try {
      this.processor.onEnd(runToSpan(run, this.resourceOf(run)));
    } catch (err) {
      this.failures.inc({ signal: 'traces', reason: 'encode' });
      this.once.warn(
        'encode',
        { err },
        'A container run could not be turned into a span; dropped.',
      );
    }
  }

  /** Sends what is queued (one attempt each, no more retries) and stops. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping.abort();
    try {
      await this.processor.shutdown();
    } catch (err) {
      this.once.warn('shutdown', { err }, 'Flushing container run spans at shutdown failed.');
    }
  }
}

/**
 * The exporter when traces are enabled and an endpoint is configured, else undefined. Throws
 * OtlpSettingsError (naming the setting) for settings that cannot work, e.g. an unreadable
 * certificate.
 */
export function createRunSpanExporter(opts: RunSpanExporterOptions): RunSpanExporter | undefined {
  if (!opts.config.lifecycle.traces_enabled) return undefined;
  const off = otlpSignalDisabled(opts.config.otlp, 'traces');
  if (off) {
    opts.logger.info(`Container run spans are not exported: ${off}.`);
    return undefined;
  }
  const settings = opts.settings ?? resolveOtlpSignal(opts.config.otlp, 'traces');
  if (!settings) return undefined;
  return new RunSpanExporter(settings, opts);
}
