/**
 * AuditSink that sends exec audit records straight to the OTLP logs endpoint with the
 * OpenTelemetry OTLP log exporter (protobuf or JSON), one resource per container like the log
 * pipeline's. Audit records are few (one per exec start and end), so a small bounded queue
 * flushed every second is all the batching they need; records that cannot be delivered after
 * the exporter's own retries are dropped and counted.
 *
 * When the log pipeline accepts records from other producers, this sink can be replaced by one
 * that hands the records to it (same AuditSink interface).
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import { otlpLogsUrl } from '../../exporters/otlp-logs.js';
import { msToHrTime } from '../../exporters/otlp-traces.js';
import { imageNameAndTags } from '../../docker/image-ref.js';
import { OnceLogger, type Logger } from '../../util/logger.js';
import { VERSION } from '../../version.js';
import { auditAttributes, auditBody, type AuditSink, type ExecAuditRecord } from './exec-audit.js';

const SCOPE = { name: 'harbormaster.exec-audit', version: VERSION };
const MAX_QUEUE = 1000;
const BATCH = 256;

export interface OtlpAuditSinkOptions {
  url: string;
  config: Config;
  hostName: string;
  /** Allowlisted container label keys (container.label.<key> resource attributes). */
  labelAllowlist: readonly string[];
  logger: Logger;
  registry?: Registry;
  flushMs?: number;
  /** Exporter to use instead of OTLP/HTTP (tests). */
  exporter?: LogRecordExporter;
}

export class OtlpAuditSink implements AuditSink {
  readonly url: string;
  private readonly exporter: LogRecordExporter;
  private readonly queue: ReadableLogRecord[] = [];
  private readonly once: OnceLogger;
  private readonly records: Counter<'outcome'>;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: OtlpAuditSinkOptions) {
    this.url = o.url;
    const otlp = o.config.otlp;
    const cfg = {
      url: o.url,
      headers: otlp.headers,
      timeoutMillis: Math.round(otlp.timeout_seconds * 1000),
      compression: (otlp.compression === 'gzip' ? 'gzip' : 'none') as never,
    };
    this.exporter =
      o.exporter ??
      (otlp.protocol === 'http/json' ? new JsonLogExporter(cfg) : new ProtoLogExporter(cfg));
    this.once = new OnceLogger(o.logger.child({ component: 'exec-audit' }));
    this.records = new Counter({
      name: 'harbormaster_exec_audit_records_total',
      help: 'Exec audit records, by outcome (exported; dropped_queue_full; dropped_export_failed).',
      labelNames: ['outcome'],
      registers: o.registry ? [o.registry] : [],
    });
    for (const outcome of ['exported', 'dropped_queue_full', 'dropped_export_failed'])
      this.records.inc({ outcome }, 0);
  }

  submit(r: ExecAuditRecord): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUE) {
      this.records.inc({ outcome: 'dropped_queue_full' });
      this.once.warn(
        'full',
        { url: this.url },
        'The exec audit queue is full (the OTLP endpoint is slow or down); records are dropped and counted.',
      );
      return;
    }
    this.queue.push(this.toLogRecord(r));
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.o.flushMs ?? 1000);
    this.timer.unref();
  }

  private resource(r: ExecAuditRecord): Resource {
    const c = r.container;
    const attrs: Record<string, string | string[]> = {
      'container.id': r.containerId,
      'container.runtime.name': 'docker',
      'host.name': this.o.hostName,
    };
    if (c) {
      const img = imageNameAndTags(c.image);
      attrs['container.name'] = c.name;
      attrs['container.image.name'] = img.name;
      if (img.tags.length) attrs['container.image.tags'] = img.tags;
      for (const k of this.o.labelAllowlist) {
        const v = c.labels[k];
        if (v !== undefined) attrs[`container.label.${k}`] = v;
      }
    }
    return resourceFromAttributes(attrs);
  }

  private toLogRecord(r: ExecAuditRecord): ReadableLogRecord {
    const t = msToHrTime(r.timeMs);
    return {
      hrTime: t,
      hrTimeObserved: msToHrTime(Date.now()),
      severityNumber: 9,
      severityText: 'INFO',
      body: auditBody(r),
      eventName: 'container.exec',
      resource: this.resource(r),
      instrumentationScope: SCOPE,
      attributes: auditAttributes(r),
      droppedAttributesCount: 0,
    };
  }

  /** Sends what is queued (one request per BATCH records). */
  async flush(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, BATCH);
    this.inflight = new Promise<void>((resolve) => {
      this.exporter.export(batch, (res: ExportResult) => {
        if (res.code === ExportResultCode.SUCCESS) {
          this.records.inc({ outcome: 'exported' }, batch.length);
          this.once.reset('export');
        } else {
          this.records.inc({ outcome: 'dropped_export_failed' }, batch.length);
          this.once.warn(
            'export',
            { url: this.url, err: res.error?.message, records: batch.length },
            `Sending exec audit records to ${this.url} failed; they are dropped and counted in harbormaster_exec_audit_records_total. Logged once until an export succeeds.`,
          );
        }
        resolve();
      });
    }).finally(() => {
      this.inflight = undefined;
    });
    await this.inflight;
    if (this.queue.length > 0) await this.flush();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
    await this.exporter.shutdown();
  }
}

/** The sink for the configured OTLP logs endpoint, or undefined when there is none. */
export function createOtlpAuditSink(
  opts: Omit<OtlpAuditSinkOptions, 'url'>,
): OtlpAuditSink | undefined {
  const url = otlpLogsUrl(opts.config.otlp);
  return url ? new OtlpAuditSink({ ...opts, url }) : undefined;
}
