/**
 * AuditSink that hands exec audit records to the log pipeline (LogsComponent.intake()), so they
 * travel with the container logs: the same exporter and its settings (OTEL_LOGS_EXPORTER=none,
 * OTLP/HTTP or gRPC, TLS and mTLS, headers, compression, NDJSON), the same retries, batches and
 * drop accounting. Each record's resource is the container's identity (host.name from the daemon,
 * service.*, OTEL_RESOURCE_ATTRIBUTES, allowlisted labels), as for its log lines; the record is an
 * OTLP event (`container.exec`, no log.iostream).
 *
 * Exec events arrive on the daemon's event stream, which must never wait: when the log queue is
 * full the records wait here (at most MAX_WAITING) until it has room; beyond that they are
 * dropped, counted and logged once. Delivery is acknowledged back per record (`exported`).
 */
import { Counter, type Registry } from 'prom-client';
import type { ResourceIdentity } from '../../docker/identity.js';
import { AckTracker, type AckToken } from '../../logs/ack.js';
import type { LogIntake } from '../../logs/component.js';
import { newRecord } from '../../logs/record.js';
import type { LogRecord } from '../../logs/types.js';
import { OnceLogger, type Logger } from '../../util/logger.js';
import { auditAttributes, auditBody, type AuditSink, type ExecAuditRecord } from './exec-audit.js';

/** Records kept while the log queue is full. */
export const MAX_WAITING = 1000;
export const AUDIT_EVENT_NAME = 'container.exec';
/** OpenTelemetry SeverityNumber INFO. */
const SEVERITY_INFO = 9;

export const AUDIT_OUTCOMES = ['exported', 'dropped_queue_full'] as const;

export interface LogsAuditSinkOptions {
  intake: LogIntake;
  identity: Pick<ResourceIdentity, 'container' | 'host'>;
  /**
   * Allowlisted container label keys (container.label.<key> resource attributes); a function is
   * asked for every record, so a SIGHUP that narrows logs.label_allowlist applies at once.
   */
  labelAllowlist: readonly string[] | (() => readonly string[]);
  logger: Logger;
  registry?: Registry;
}

function allowlistOf(a: readonly string[] | (() => readonly string[])): readonly string[] {
  return typeof a === 'function' ? a() : a;
}

export class LogsAuditSink implements AuditSink {
  private readonly waiting: LogRecord[] = [];
  private readonly once: OnceLogger;
  private readonly records: Counter<'outcome'>;
  /** One token per record; `exported` counts the records the pipeline acknowledged. */
  private readonly acks: AckTracker<number>;
  private submitted = 0;
  private acknowledged = 0;
  private draining = false;
  private closed = false;

  constructor(private readonly o: LogsAuditSinkOptions) {
    this.once = new OnceLogger(o.logger.child({ component: 'exec-audit' }));
    this.records = new Counter({
      name: 'harbormaster_exec_audit_records_total',
      help: 'Exec audit records, by outcome (exported: the log pipeline is done with it, delivered or rejected by the receiver and counted in harbormaster_log_drops_total; dropped_queue_full: the log queue stayed full).',
      labelNames: ['outcome'],
      registers: o.registry ? [o.registry] : [],
    });
    for (const outcome of AUDIT_OUTCOMES) this.records.inc({ outcome }, 0);
    this.acks = new AckTracker<number>((n) => {
      this.records.inc({ outcome: 'exported' }, n - this.acknowledged);
      this.acknowledged = n;
    });
  }

  submit(r: ExecAuditRecord): void {
    if (this.closed) return;
    if (this.waiting.length > 0 || this.o.intake.waitForSpace() !== undefined) {
      if (this.waiting.length >= MAX_WAITING) {
        this.records.inc({ outcome: 'dropped_queue_full' });
        this.once.warn(
          'full',
          { waiting: this.waiting.length },
          'The log queue is full (the logs endpoint is slow or down) and the exec audit records waiting for it reached their bound; more are dropped and counted in harbormaster_exec_audit_records_total{outcome="dropped_queue_full"}.',
        );
        return;
      }
      this.waiting.push(this.toLogRecord(r));
      void this.drain();
      return;
    }
    this.o.intake.submit(this.toLogRecord(r));
  }

  /** Hands waiting records to the pipeline as the queue makes room. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.waiting.length > 0 && !this.closed) {
        const room = this.o.intake.waitForSpace();
        if (room) {
          await room;
          continue;
        }
        this.o.intake.submit(this.waiting.shift()!);
      }
    } finally {
      this.draining = false;
    }
  }

  private toLogRecord(r: ExecAuditRecord): LogRecord {
    const c = r.container;
    const attributes = c
      ? this.o.identity.container(c, allowlistOf(this.o.labelAllowlist))
      : {
          ...this.o.identity.host(),
          'container.id': r.containerId,
          'container.runtime.name': 'docker',
        };
    const sec = Math.floor(r.timeMs / 1000);
    const token: AckToken = this.acks.next(++this.submitted, 0);
    const rec = newRecord(
      // its own resource key: the container's log source does not count these as its lines
      { key: `exec-audit:${r.containerId}`, attributes },
      'stdout', // not read: an event record has no log.iostream
      auditBody(r),
      sec,
      Math.round((r.timeMs - sec * 1000) * 1_000_000),
      Date.now(),
      token,
      auditAttributes(r),
    );
    rec.severityNumber = SEVERITY_INFO;
    rec.severityText = 'INFO';
    rec.eventName = AUDIT_EVENT_NAME;
    return rec;
  }

  /** Records still waiting for room go into the queue now (the pipeline drains it at stop). */
  shutdown(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const rec of this.waiting.splice(0)) this.o.intake.submit(rec);
    return Promise.resolve();
  }
}
