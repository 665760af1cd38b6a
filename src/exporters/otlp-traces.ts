/**
 * Container runs as OTLP spans. Each finished run becomes one ReadableSpan built here (with the
 * run's real start and end times and a trace id derived from the container id, so a container's
 * runs form one trace across agent restarts) and is handed to the SDK's BatchSpanProcessor, which
 * batches and sends it with the OTLP/HTTP exporter (protobuf or JSON).
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
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type TimedEvent,
} from '@opentelemetry/sdk-trace-base';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import { VERSION } from '../version.js';

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

/** `registry/repo:tag@digest` → name `registry/repo`, tags `[tag]`. */
export function splitImage(ref: string): { name: string; tags: string[] } {
  const noDigest = ref.split('@')[0] ?? ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  if (colon > slash) return { name: noDigest.slice(0, colon), tags: [noDigest.slice(colon + 1)] };
  return { name: noDigest, tags: noDigest ? ['latest'] : [] };
}

/** Builds the ReadableSpan of a finished run. */
export function runToSpan(run: ContainerRun, resource: Resource): ReadableSpan {
  const ctx: SpanContext = {
    traceId: traceIdFor(run.containerId),
    spanId: spanIdFor(run.containerId, run.startMs),
    traceFlags: TraceFlags.SAMPLED,
  };
  const { name: imageName, tags } = splitImage(run.image);
  const attributes: Attributes = {
    'container.id': run.containerId,
    'container.name': run.containerName,
    'container.image.name': imageName,
    'container.image.tags': tags,
    'container.runtime.name': 'docker',
    'process.exit.code': run.exitCode,
    'container.oom_killed': run.oomKilled,
  };
  if (run.signal) attributes['container.exit.signal'] = run.signal;
  if (run.attempt !== undefined) attributes['container.run.attempt'] = run.attempt;
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

/** The traces URL from the otlp config section, or undefined when traces are off. */
export function tracesUrl(otlp: Config['otlp']): string | undefined {
  if (otlp.traces_endpoint) return otlp.traces_endpoint;
  if (otlp.endpoint) return `${otlp.endpoint.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/** Bounded reason of a failed export. */
export function failureReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const str = (v: unknown): string =>
    typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  const text = `${str(e?.message)} ${str(e?.cause?.code)} ${str(e?.code)}`;
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

export interface RunSpanExporterOptions {
  config: Config;
  hostName: string;
  logger: Logger;
  registry?: Registry;
  /** Exporter to use instead of OTLP/HTTP (tests). */
  exporter?: SpanExporter;
}

/** Sends finished container runs as spans; a no-op export never blocks or throws. */
export class RunSpanExporter {
  readonly url: string;
  private readonly processor: BatchSpanProcessor;
  private readonly resource: Resource;
  private readonly once: OnceLogger;
  private readonly log: Logger;
  private readonly failures: Counter;
  private readonly exported: Counter;
  private closed = false;
  /** For the status page: when an export last succeeded (ms since the epoch), the last error. */
  lastSuccessAt: number | undefined;
  lastError: string | undefined;

  constructor(url: string, opts: RunSpanExporterOptions) {
    this.url = url;
    const otlp = opts.config.otlp;
    this.log = opts.logger.child({ component: 'otlp-traces' });
    this.once = new OnceLogger(this.log);
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
    this.resource = resourceFromAttributes({
      'service.name': 'harbormaster',
      'service.version': VERSION,
      'host.name': opts.hostName,
    });
    const timeoutMillis = Math.round(otlp.timeout_seconds * 1000);
    const exporterConfig = {
      url,
      headers: otlp.headers,
      timeoutMillis,
      compression: (otlp.compression === 'gzip' ? 'gzip' : 'none') as never,
    };
    const inner: SpanExporter =
      opts.exporter ??
      (otlp.protocol === 'http/json'
        ? new JsonTraceExporter(exporterConfig)
        : new ProtoTraceExporter(exporterConfig));
    const counting: SpanExporter = {
      export: (spans, done) => {
        try {
          inner.export(spans, (res: ExportResult) => {
            this.onResult(spans.length, res);
            done(res);
          });
        } catch (err) {
          this.onResult(spans.length, { code: ExportResultCode.FAILED, error: err as Error });
          done({ code: ExportResultCode.FAILED, error: err as Error });
        }
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    };
    this.processor = new BatchSpanProcessor(counting, {
      scheduledDelayMillis: Math.round(opts.config.lifecycle.traces_batch_delay_seconds * 1000),
      exportTimeoutMillis: timeoutMillis + 1000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
  }

  private onResult(n: number, res: ExportResult): void {
    if (res.code === ExportResultCode.SUCCESS) {
      this.lastSuccessAt = Date.now();
      this.lastError = undefined;
      this.exported.inc(n);
      this.once.reset('export');
      return;
    }
    const reason = failureReason(res.error);
    this.lastError = `${reason}: ${res.error?.message ?? 'export failed'}`;
    this.failures.inc({ signal: 'traces', reason });
    this.once.warn(
      'export',
      { url: this.url, reason, err: res.error?.message, spans: n },
      `Exporting container run spans to ${this.url} failed (${reason}); they are dropped and counted in harbormaster_otlp_export_failures_total. Logged once until an export succeeds.`,
    );
  }

  /** Queues a finished run; never throws. */
  export(run: ContainerRun): void {
    if (this.closed) return;
    try {
      this.processor.onEnd(runToSpan(run, this.resource));
    } catch (err) {
      this.failures.inc({ signal: 'traces', reason: 'encode' });
      this.once.warn(
        'encode',
        { err },
        'A container run could not be turned into a span; dropped.',
      );
    }
  }

  /** Sends what is queued (bounded by the export timeout) and stops. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.processor.shutdown();
    } catch (err) {
      this.once.warn('shutdown', { err }, 'Flushing container run spans at shutdown failed.');
    }
  }
}

/** The exporter when traces are enabled and an endpoint is configured, else undefined. */
export function createRunSpanExporter(opts: RunSpanExporterOptions): RunSpanExporter | undefined {
  if (!opts.config.lifecycle.traces_enabled) return undefined;
  const url = tracesUrl(opts.config.otlp);
  if (!url) return undefined;
  return new RunSpanExporter(url, opts);
}
