/**
 * The exec audit trail: `docker exec` into a container (exec_create → exec_start → exec_die)
 * becomes audit records (who ran what, how, with which result) handed to an AuditSink.
 *
 * The daemon's own health probes run as execs too: an exec whose command is the container's
 * health check command is not audited (nor are start/die of execs whose create was not seen). The user,
 * privileged and tty flags are not in the events: one GET /exec/<id>/json per exec (at create)
 * reads them. The command is redacted with the log redaction rules before it leaves this module.
 */
import type { Counter } from 'prom-client';
import { baseAction } from '../../docker/events.js';
import type { ContainerInfo, DockerEvent } from '../../docker/types.js';
import { OnceLogger, type Logger } from '../../util/logger.js';
import { isHealthProbe } from './tracker.js';

/** One audit record of an exec. */
export interface ExecAuditRecord {
  /** `start`: the command began; `exit`: it ended (exitCode set). */
  readonly phase: 'start' | 'exit';
  /** Time of the daemon event, ms since the epoch. */
  readonly timeMs: number;
  readonly containerId: string;
  /** The container as the inventory knows it (undefined if it is already gone). */
  readonly container: ContainerInfo | undefined;
  readonly execId: string;
  /** The command line, redacted. */
  readonly command: string;
  /** `--user` of the exec ('' means the container's user). Undefined when it could not be read. */
  readonly user: string | undefined;
  readonly privileged: boolean | undefined;
  readonly tty: boolean | undefined;
  readonly exitCode?: number;
}

/** Where audit records go (the OTLP logs endpoint today; the log pipeline once it takes them). */
export interface AuditSink {
  submit(r: ExecAuditRecord): void;
  shutdown?(): Promise<void>;
}

/** What GET /exec/<id>/json returns (fields used). */
export interface ApiExecInspect {
  ExitCode?: number | null;
  ProcessConfig?: {
    user?: string;
    privileged?: boolean;
    tty?: boolean;
    entrypoint?: string;
    arguments?: string[] | null;
  };
}

interface Details {
  user: string | undefined;
  privileged: boolean | undefined;
  tty: boolean | undefined;
}

interface PendingExec {
  containerId: string;
  command: string;
  details: Promise<Details>;
  started: boolean;
}

export interface ExecAuditorOptions {
  /** Reads an exec's settings (GET /exec/<id>/json). */
  inspectExec: (execId: string, signal: AbortSignal) => Promise<ApiExecInspect>;
  container: (id: string) => ContainerInfo | undefined;
  sink: AuditSink;
  /** Masks secrets in the command (the log redaction rules). */
  redact: (s: string) => string;
  logger: Logger;
  /** harbormaster_exec_audit_errors_total{reason}. */
  errors?: Counter<'reason'>;
  now?: () => number;
}

/** Execs remembered between create and die; beyond this the oldest is forgotten (counted). */
const MAX_PENDING = 4096;

/** The command of an exec event: `exec_create: sh -c exit 3` → `sh -c exit 3`. */
export function execCommand(action: string): string {
  const colon = action.indexOf(':');
  return colon >= 0 ? action.slice(colon + 1).trim() : '';
}

function eventMs(ev: DockerEvent): number {
  if (ev.timeNano) return ev.timeNano / 1e6;
  if (ev.time) return ev.time * 1000;
  return Date.now();
}

export class ExecAuditor {
  private readonly o: ExecAuditorOptions;
  private readonly once: OnceLogger;
  private readonly pending = new Map<string, PendingExec>();
  private readonly controller = new AbortController();

  constructor(o: ExecAuditorOptions) {
    this.o = o;
    this.once = new OnceLogger(o.logger.child({ component: 'exec-audit' }));
    for (const r of ['inspect_failed', 'forgotten', 'no_exec_id'] as const)
      o.errors?.inc({ reason: r }, 0);
  }

  onDockerEvent(ev: DockerEvent): void {
    if (ev.Type !== 'container') return;
    const base = baseAction(ev.Action ?? '');
    if (base !== 'exec_create' && base !== 'exec_start' && base !== 'exec_die') return;
    const containerId = ev.Actor?.ID ?? '';
    const execId = ev.Actor?.Attributes?.execID;
    if (!execId) {
      if (base === 'exec_create') {
        this.o.errors?.inc({ reason: 'no_exec_id' });
        this.once.warn(
          'no-exec-id',
          { action: base },
          'The Docker daemon sends exec events without an execID; execs are counted but not audited.',
        );
      }
      return;
    }
    if (base === 'exec_create') {
      if (isHealthProbe(this.o.container(containerId), ev.Action)) return;
      if (this.pending.size >= MAX_PENDING) {
        const oldest = this.pending.keys().next().value;
        if (oldest !== undefined) this.pending.delete(oldest);
        this.o.errors?.inc({ reason: 'forgotten' });
      }
      this.pending.set(execId, {
        containerId,
        command: this.o.redact(execCommand(ev.Action)),
        details: this.readDetails(execId),
        started: false,
      });
      return;
    }
    const p = this.pending.get(execId);
    if (!p) return; // a health probe, or created before the agent listened
    const timeMs = eventMs(ev);
    if (base === 'exec_start') {
      if (p.started) return;
      p.started = true;
      void this.emit(p, execId, 'start', timeMs, undefined);
      return;
    }
    this.pending.delete(execId);
    const code = Number(ev.Actor.Attributes?.exitCode);
    void this.emit(p, execId, 'exit', timeMs, Number.isFinite(code) ? code : undefined);
  }

  private async readDetails(execId: string): Promise<Details> {
    try {
      const x = await this.o.inspectExec(execId, this.controller.signal);
      const pc = x.ProcessConfig ?? {};
      return { user: pc.user ?? '', privileged: pc.privileged, tty: pc.tty };
    } catch (err) {
      if (!this.controller.signal.aborted) {
        this.o.errors?.inc({ reason: 'inspect_failed' });
        this.once.warn(
          'inspect',
          { execId, err: (err as Error).message },
          'Reading an exec (GET /exec/<id>/json) failed; its audit record lacks user, privileged and tty.',
        );
      }
      return { user: undefined, privileged: undefined, tty: undefined };
    }
  }

  private async emit(
    p: PendingExec,
    execId: string,
    phase: 'start' | 'exit',
    timeMs: number,
    exitCode: number | undefined,
  ): Promise<void> {
    const d = await p.details;
    const r: ExecAuditRecord = {
      phase,
      timeMs,
      containerId: p.containerId,
      container: this.o.container(p.containerId),
      execId,
      command: p.command,
      ...d,
      ...(exitCode !== undefined ? { exitCode } : {}),
    };
    try {
      this.o.sink.submit(r);
    } catch (err) {
      this.once.error('sink', { err }, 'The exec audit sink threw; the record is lost.');
    }
  }

  /** Abandons inspects in flight; records already submitted are the sink's to deliver. */
  stop(): void {
    this.controller.abort();
    this.pending.clear();
  }
}

/** The audit record as a one-line sentence (the log record body). */
export function auditBody(r: ExecAuditRecord): string {
  const who = r.container?.name ?? r.containerId.slice(0, 12);
  const user = r.user === undefined ? '' : ` as ${r.user === '' ? 'the container user' : r.user}`;
  const how = `${r.privileged ? ' privileged' : ''}${r.tty ? ' with a tty' : ''}`;
  if (r.phase === 'start') return `docker exec in ${who}${user}${how}: ${r.command}`;
  return `docker exec in ${who} ended with exit code ${r.exitCode ?? 'unknown'}: ${r.command}`;
}

/** Record attributes (OpenTelemetry semantic conventions where they exist). */
export function auditAttributes(r: ExecAuditRecord): Record<string, string | number | boolean> {
  const a: Record<string, string | number | boolean> = {
    'event.name': 'container.exec',
    'container.exec.phase': r.phase,
    'container.exec.id': r.execId,
    'process.command_line': r.command,
  };
  if (r.user !== undefined) a['process.user.name'] = r.user;
  if (r.privileged !== undefined) a['container.exec.privileged'] = r.privileged;
  if (r.tty !== undefined) a['container.exec.tty'] = r.tty;
  if (r.exitCode !== undefined) a['process.exit.code'] = r.exitCode;
  return a;
}
