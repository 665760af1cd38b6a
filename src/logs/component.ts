// The log shipping feature: discovers json-file logs from the inventory, runs one tailer per
// container, and feeds the bounded queue / export loop. See DESIGN.md "Flow of data".
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AgentContext } from '../agent.js';
import type { Component, ComponentHealth } from '../component.js';
import type { ContainerInfo } from '../docker/types.js';
import { NdjsonLogExporter } from '../exporters/ndjson.js';
import { OtlpLogsExporter, otlpLogsUrl } from '../exporters/otlp-logs.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import { ApiLogReader, logSourceFor, type ApiLogRecord } from './api-reader.js';
import { CheckpointStore } from './checkpoints.js';
import { cursorFromCheckpoint, isApiCheckpoint } from './cursor-store.js';
import { BoundedQueue, ExportLoop } from './pipeline.js';
import { LogProcessor, PROCESSING_EVENTS } from './processing/index.js';
import { ProcessingSink } from './processing/sink.js';
import { Tailer, type TailerStats } from './tailer.js';
import {
  DROP_REASONS,
  type ApiCursor,
  type DropReason,
  type LogExporter,
  type LogRecord,
  type LogResource,
} from './types.js';

/** `busybox:1.36` → name `busybox`, tags [`1.36`]; digests and registry ports handled. */
export function splitImage(ref: string): { name: string; tags: string[] } {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  if (colon > slash) return { name: noDigest.slice(0, colon), tags: [noDigest.slice(colon + 1)] };
  return { name: noDigest, tags: at >= 0 ? [] : ref.startsWith('sha256:') ? [] : ['latest'] };
}

export function containerResource(
  c: ContainerInfo,
  hostName: string,
  allow: readonly string[],
): LogResource {
  const img = splitImage(c.image);
  const attributes: Record<string, string | string[]> = {
    'container.id': c.id,
    'container.name': c.name,
    'container.image.name': img.name,
    'container.runtime.name': 'docker',
    'host.name': hostName,
  };
  if (img.tags.length > 0) attributes['container.image.tags'] = img.tags;
  for (const k of allow) {
    const v = c.labels[k];
    if (v !== undefined) attributes[`container.label.${k}`] = v;
  }
  return { key: c.id, attributes };
}

/** Maps the daemon's log path under the agent's view of the Docker root. */
export function mapLogPath(
  logPath: string,
  daemonRoot: string | undefined,
  agentRoot: string,
): string {
  if (!daemonRoot || daemonRoot === agentRoot) return logPath;
  const root = daemonRoot.replace(/\/+$/, '');
  if (logPath === root || logPath.startsWith(`${root}/`))
    return path.join(agentRoot, logPath.slice(root.length));
  return logPath;
}

interface TailerEntry {
  tailer: Tailer;
  /** Processing stages of the container (between partial reassembly and the queue). */
  proc: ProcessingSink;
  container: ContainerInfo;
  lines: Record<'stdout' | 'stderr', number>;
  bytes: Record<'stdout' | 'stderr', number>;
  reported: {
    lines: Record<'stdout' | 'stderr', number>;
    bytes: Record<'stdout' | 'stderr', number>;
  };
}

/** A container read through the Engine API logs stream (local / journald drivers, remote daemon). */
interface ApiEntry {
  container: ContainerInfo;
  proc: ProcessingSink;
  resource: LogResource;
  abort: AbortController;
  /** The current reader's run(); undefined when none runs. */
  running: Promise<void> | undefined;
  /** After the last record handed to processing (where a new reader resumes). */
  readCursor: ApiCursor | undefined;
  /** startedAt of the container run the last reader was started for. */
  readFor: number;
  removed: boolean;
}

export interface LogsComponentOptions {
  ctx: Pick<AgentContext, 'config' | 'logger' | 'hostName' | 'inventory'> &
    Partial<Pick<AgentContext, 'docker'>>;
  registry: Registry;
  exporter: LogExporter;
}

export class LogsComponent implements Component {
  readonly name = 'logs';
  private readonly cfg: AgentContext['config']['logs'];
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private store!: CheckpointStore;
  private queue: BoundedQueue;
  private loop!: ExportLoop;
  private readonly tailers = new Map<string, TailerEntry>();
  private readonly apiReaders = new Map<string, ApiEntry>();
  private readonly lp: LogProcessor;
  private unsubscribe: (() => void) | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private firstReconcileDone = false;
  private stopped = false;
  private readonly drops = new Map<DropReason, number>();
  private readonly m;

  constructor(private readonly o: LogsComponentOptions) {
    this.cfg = o.ctx.config.logs;
    this.log = o.ctx.logger.child({ component: 'logs' });
    this.once = new OnceLogger(this.log);
    this.queue = new BoundedQueue(
      this.cfg.queue_max_bytes,
      this.cfg.batch_max_records,
      this.cfg.batch_max_bytes,
    );
    const registers = [o.registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client collect() binds its own this
    const self = this;
    const dropCounter = new Counter({
      name: 'harbormaster_log_drops_total',
      help: 'Log data dropped, by reason (lines, or files for file_removed_unread / rotated_away / file_truncated).',
      labelNames: ['reason'],
      registers,
    });
    for (const r of DROP_REASONS) dropCounter.inc({ reason: r }, 0);
    const events = new Counter({
      name: 'harbormaster_log_processing_events_total',
      help: 'Things log processing did, by event (parsed_json, parsed_logfmt, parse_failed, attributes_dropped, values_truncated, multiline_split, multiline_timeout, invalid_label, redacted).',
      labelNames: ['event'],
      registers,
    });
    for (const e of PROCESSING_EVENTS) events.inc({ event: e }, 0);
    this.lp = new LogProcessor(this.cfg.processing, {
      hooks: {
        drop: (reason, n) => this.drop(reason, n),
        event: (name, n) => events.inc({ event: name }, n),
        warnOnce: (cause, obj, msg) => this.once.warn(cause, obj, msg),
      },
    });
    const linesRead = new Counter({
      name: 'harbormaster_log_lines_read_total',
      help: 'Json-file records read, per container and stream.',
      labelNames: ['container_name', 'stream'],
      registers,
      collect() {
        self.reportRead(linesRead, bytesRead);
      },
    });
    const bytesRead = new Counter({
      name: 'harbormaster_log_bytes_read_total',
      help: 'Bytes of json-file records read, per container and stream.',
      labelNames: ['container_name', 'stream'],
      registers,
    });
    this.m = {
      drops: dropCounter,
      linesRead,
      bytesRead,
      exported: new Counter({
        name: 'harbormaster_log_records_exported_total',
        help: 'Log records the exporter delivered.',
        registers,
      }),
      failures: new Counter({
        name: 'harbormaster_log_export_failures_total',
        help: 'Failed export attempts, by kind (retryable or permanent).',
        labelNames: ['kind'],
        registers,
      }),
      retries: new Counter({
        name: 'harbormaster_log_export_retries_total',
        help: 'Export attempts that were retries.',
        registers,
      }),
      truncated: new Counter({
        name: 'harbormaster_log_lines_truncated_total',
        help: 'Lines longer than logs.max_line_bytes that were shipped truncated.',
        registers,
      }),
      queueRecords: new Gauge({
        name: 'harbormaster_log_queue_records',
        help: 'Records waiting in the log queue.',
        registers,
        collect() {
          this.set(self.queue.length);
        },
      }),
      queueBytes: new Gauge({
        name: 'harbormaster_log_queue_bytes',
        help: 'Bytes waiting in the log queue (bound: logs.queue_max_bytes).',
        registers,
        collect() {
          this.set(self.queue.bytes);
        },
      }),
      behind: new Gauge({
        name: 'harbormaster_log_file_bytes_behind',
        help: 'Bytes written to a container log (all open generations) but not read yet.',
        labelNames: ['container_name'],
        registers,
        collect() {
          this.reset();
          for (const e of self.tailers.values())
            this.set({ container_name: e.container.name }, e.tailer.bytesBehind());
        },
      }),
      tailers: new Gauge({
        name: 'harbormaster_log_tailers',
        help: 'Container log files being tailed.',
        registers,
        collect() {
          this.set(self.tailers.size);
        },
      }),
    };
  }

  private reportRead(
    lines: Counter<'container_name' | 'stream'>,
    bytes: Counter<'container_name' | 'stream'>,
  ): void {
    for (const e of this.tailers.values()) {
      for (const s of ['stdout', 'stderr'] as const) {
        const dl = e.lines[s] - e.reported.lines[s];
        const db = e.bytes[s] - e.reported.bytes[s];
        if (dl > 0 || e.reported.lines[s] === 0)
          lines.inc({ container_name: e.container.name, stream: s }, dl);
        if (db > 0 || e.reported.bytes[s] === 0)
          bytes.inc({ container_name: e.container.name, stream: s }, db);
        e.reported.lines[s] = e.lines[s];
        e.reported.bytes[s] = e.bytes[s];
      }
    }
  }

  private drop(reason: DropReason, n = 1): void {
    this.m.drops.inc({ reason }, n);
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
    this.once.warn(
      `drop:${reason}`,
      { reason },
      `Log data was dropped (reason ${reason}); counted in harbormaster_log_drops_total, logged once per reason.`,
    );
  }

  start(): Promise<void> {
    const stateDir = this.o.ctx.config.state_dir;
    this.store = new CheckpointStore(stateDir, this.log, this.cfg.checkpoint_fsync);
    this.loop = new ExportLoop({
      exporter: this.o.exporter,
      store: this.store,
      queue: this.queue,
      batchDelayMs: this.cfg.batch_delay_seconds * 1000,
      retryInitialMs: this.cfg.retry_initial_seconds * 1000,
      retryMaxMs: this.cfg.retry_max_seconds * 1000,
      pathOf: (id) => this.tailers.get(id)?.tailer.path ?? '',
      hooks: {
        exported: (n) => this.m.exported.inc(n),
        exportFailure: (kind) => this.m.failures.inc({ kind }),
        retry: () => this.m.retries.inc(),
        drop: (r, n) => this.drop(r, n),
        warn: (c, obj, msg) => this.once.warn(c, obj, msg),
        committed: (source, pos) => this.maybeFinish(source, pos),
        committedApi: (source) => {
          // A reader that is gone for good: its late commits leave no entry behind.
          if (!this.apiReaders.has(source)) this.store.delete(source);
        },
      },
    });
    this.loop.start();
    const inv = this.o.ctx.inventory;
    this.unsubscribe = inv.subscribe((ev) => {
      if (ev.type === 'removed') this.onRemoved(ev.container);
      else this.ensure(ev.container);
    });
    const tick = (): void => {
      if (this.stopped) return;
      this.reconcile();
      this.reconcileTimer = setTimeout(tick, this.firstReconcileDone ? 5000 : 100);
      this.reconcileTimer.unref();
    };
    tick();
    this.log.info(
      {
        checkpoints: this.store.file,
        firstStart: this.store.firstStart,
        startAt: this.cfg.start_at,
        exporter: this.o.exporter.name,
      },
      'Log shipping started.',
    );
    return Promise.resolve();
  }

  private reconcile(): void {
    const inv = this.o.ctx.inventory;
    if (!inv.ready()) return;
    const list = inv.list();
    const ids = new Set(list.map((c) => c.id));
    for (const c of list) this.ensure(c);
    for (const [id, e] of this.tailers)
      if (!ids.has(id) && !inv.get(id)) this.onRemoved(e.container);
    for (const [id, e] of this.apiReaders)
      if (!ids.has(id) && !inv.get(id)) this.onRemoved(e.container);
    if (!this.firstReconcileDone) {
      this.firstReconcileDone = true;
      for (const k of this.store.keys()) if (!ids.has(k)) this.store.delete(k);
    }
  }

  /** How the container's logs are read ('none': not at all). */
  private sourceOf(c: ContainerInfo): 'file' | 'api' | 'none' {
    if (!this.lp.enabled(c.labels)) return 'none';
    const docker = this.o.ctx.docker;
    if (!docker) return c.logDriver === 'json-file' && c.logPath !== '' ? 'file' : 'none';
    const s = logSourceFor(c, docker.endpoint);
    return s === 'file' && c.logPath === '' ? 'none' : s;
  }

  private ensure(c: ContainerInfo): void {
    if (this.stopped) return;
    const source = this.sourceOf(c);
    if (source === 'api') return this.ensureApi(c);
    if (source !== 'file') return;
    const existing = this.tailers.get(c.id);
    if (existing) {
      existing.container = c;
      if (c.state !== 'running' && c.state !== 'restarting' && c.state !== 'paused')
        existing.tailer.containerStopped();
      return;
    }
    const cfg = this.o.ctx.config;
    const file = mapLogPath(
      c.logPath,
      this.o.ctx.inventory.engine()?.dockerRootDir,
      cfg.docker_root,
    );
    const stored = this.store.get(c.id);
    const checkpoint = isApiCheckpoint(stored) ? undefined : stored;
    // Only containers that existed at the very first start (first reconcile) honour start_at.
    const startAt =
      this.store.firstStart && !this.firstReconcileDone ? this.cfg.start_at : 'beginning';
    const entry: TailerEntry = {
      container: c,
      lines: { stdout: 0, stderr: 0 },
      bytes: { stdout: 0, stderr: 0 },
      reported: { lines: { stdout: 0, stderr: 0 }, bytes: { stdout: 0, stderr: 0 } },
      tailer: undefined as unknown as Tailer,
      proc: new ProcessingSink(this.lp, c.labels, c.name, this.queue),
    };
    const stats: TailerStats = {
      lines: (stream, n, b) => {
        entry.lines[stream] += n;
        entry.bytes[stream] += b;
      },
      drop: (r, n) => this.drop(r, n),
      truncated: () => this.m.truncated.inc(),
      warn: (cause, obj, msg) => this.once.warn(cause, { ...obj, container: c.name }, msg),
    };
    entry.tailer = new Tailer({
      key: c.id,
      path: file,
      resource: containerResource(c, this.o.ctx.hostName, this.cfg.label_allowlist),
      sink: entry.proc,
      stats,
      ...(checkpoint ? { checkpoint } : {}),
      startAt,
      maxLineBytes: this.cfg.max_line_bytes,
      chunkBytes: this.cfg.read_chunk_bytes,
      partialFlushMs: this.cfg.partial_flush_seconds * 1000,
      pollMs: this.cfg.poll_interval_seconds * 1000,
    });
    this.tailers.set(c.id, entry);
    entry.tailer.start();
    if (c.state !== 'running' && c.state !== 'restarting' && c.state !== 'paused')
      entry.tailer.containerStopped();
    void entry.tailer.finished.then(() => {
      // Everything is read: ship what multiline grouping still holds.
      entry.proc.flushAll();
      if (!entry.tailer.lastPos) this.retire(c.id);
    });
  }

  private ensureApi(c: ContainerInfo): void {
    const docker = this.o.ctx.docker;
    if (!docker) return;
    let e = this.apiReaders.get(c.id);
    if (!e) {
      let cursor = cursorFromCheckpoint(this.store.get(c.id));
      if (
        !cursor &&
        this.store.firstStart &&
        !this.firstReconcileDone &&
        this.cfg.start_at === 'end'
      ) {
        const now = { t: (BigInt(Date.now()) * 1_000_000n).toString(), n: 0 };
        cursor = { stdout: now, stderr: { ...now } };
      }
      e = {
        container: c,
        proc: new ProcessingSink(
          this.lp,
          c.labels,
          c.name,
          this.queue,
          cursor ? { apiCursor: cursor } : undefined,
        ),
        resource: containerResource(c, this.o.ctx.hostName, this.cfg.label_allowlist),
        abort: new AbortController(),
        running: undefined,
        readCursor: cursor,
        readFor: -1,
        removed: false,
      };
      this.apiReaders.set(c.id, e);
    }
    e.container = c;
    // One reader per run of the container: the stream ends when it stops; a new run (restart)
    // gets a new reader that resumes after the last record read.
    if (!e.running && !e.removed && e.readFor !== c.startedAt) this.startApiReader(e);
  }

  private startApiReader(e: ApiEntry): void {
    const docker = this.o.ctx.docker!;
    const c = e.container;
    e.readFor = c.startedAt;
    const id = c.id;
    const reader = new ApiLogReader({
      client: docker,
      containerId: id,
      ...(e.readCursor ? { cursor: e.readCursor } : {}),
      maxLineBytes: this.cfg.max_line_bytes,
      partialFlushMs: this.cfg.partial_flush_seconds * 1000,
      retryMaxMs: 5000,
      onRecords: (batch: ApiLogRecord[]) => {
        const observedMs = Date.now();
        for (const r of batch) {
          const sec = r.timeUnixNano / 1_000_000_000n;
          const rec: LogRecord = {
            resource: e.resource,
            body: r.body,
            stream: r.stream,
            timeSec: Number(sec),
            timeNanos: Number(r.timeUnixNano - sec * 1_000_000_000n),
            observedMs,
            source: id,
            apiCursor: r.cursor,
            ...(r.truncated ? { attributes: { 'harbormaster.log.truncated': true } } : {}),
          };
          if (r.truncated) this.m.truncated.inc();
          e.proc.push(rec);
          e.readCursor = r.cursor;
        }
        return this.queue.waitForSpace();
      },
      onProblem: (reason, message) =>
        this.once.warn(
          `api-reader:${reason}`,
          { container: e.container.name, reason, detail: message.slice(0, 300) },
          'Reading a container log through the Engine API had a problem (logged once per kind).',
        ),
    });
    const run = reader.run(e.abort.signal).then(
      (end) => {
        e.running = undefined;
        // The stream ended: what multiline grouping holds will get no continuation.
        e.proc.flushAll();
        if (end === 'aborted' || this.stopped) return;
        if (end === 'gone' || e.removed) {
          this.retireApi(id);
          return;
        }
        // Restarted meanwhile (the event may have come before the stream ended)?
        const now = this.o.ctx.inventory.get(id);
        if (now && now.startedAt !== e.readFor) {
          e.container = now;
          const t = setTimeout(() => {
            if (!e.running && !e.removed && !this.stopped) this.startApiReader(e);
          }, 200);
          t.unref();
        }
      },
      () => {
        e.running = undefined;
      },
    );
    e.running = run;
  }

  private retireApi(id: string): void {
    const e = this.apiReaders.get(id);
    if (!e) return;
    this.apiReaders.delete(id);
    e.abort.abort();
    e.proc.close();
    this.store.delete(id);
  }

  private onRemoved(c: ContainerInfo): void {
    this.tailers.get(c.id)?.tailer.markRemoved();
    const e = this.apiReaders.get(c.id);
    if (e) {
      e.removed = true;
      if (!e.running) this.retireApi(c.id);
    }
  }

  private maybeFinish(source: string, pos: { offset: number }): void {
    const e = this.tailers.get(source);
    if (e?.tailer.done && e.tailer.lastPos && e.tailer.lastPos.offset === pos.offset)
      this.retire(source);
  }

  private retire(id: string): void {
    const e = this.tailers.get(id);
    if (!e) return;
    this.tailers.delete(id);
    e.proc.close();
    this.store.delete(id);
    this.reportRead(this.m.linesRead, this.m.bytesRead);
    for (const s of ['stdout', 'stderr']) {
      this.m.linesRead.remove({ container_name: e.container.name, stream: s });
      this.m.bytesRead.remove({ container_name: e.container.name, stream: s });
    }
    void e.tailer.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    this.unsubscribe?.();
    for (const e of this.apiReaders.values()) e.abort.abort();
    await Promise.all([
      ...[...this.tailers.values()].map((e) => e.tailer.stop()),
      ...[...this.apiReaders.values()].map((e) => e.running),
    ]);
    // Held multiline groups go into the drain (their lines are re-read if it does not finish:
    // commits never pass the first line of a held group).
    for (const e of [...this.tailers.values(), ...this.apiReaders.values()]) {
      e.proc.flushAll();
      e.proc.close();
    }
    const drainMs = Math.max(500, (this.o.ctx.config.shutdown_timeout_seconds - 2) * 1000);
    await this.loop?.stop(drainMs);
    await this.o.exporter.shutdown?.();
  }

  health(): ComponentHealth {
    const l = this.loop;
    if (l && l.consecutiveFailures > 0)
      return {
        ok: true,
        detail: `export retrying (${l.consecutiveFailures}): ${l.lastError ?? ''}`,
      };
    return {
      ok: true,
      detail: `${this.tailers.size} log files, ${this.apiReaders.size} Engine API log streams`,
    };
  }
}

/** FEATURES factory: undefined when log shipping is off or has nowhere to go. */
export function createLogsComponent(ctx: AgentContext): Component | undefined {
  const cfg = ctx.config.logs;
  if (!cfg.enabled) return undefined;
  let exporter: LogExporter | undefined;
  const url = otlpLogsUrl(ctx.config.otlp);
  const kind = cfg.exporter === 'auto' ? (url ? 'otlp' : undefined) : cfg.exporter;
  if (kind === 'otlp') {
    if (!url)
      throw new Error(
        'logs.exporter is otlp but no OTLP endpoint is set (otlp.endpoint, otlp.logs_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)',
      );
    exporter = new OtlpLogsExporter({
      url,
      // gRPC for logs is wired with the log pipeline v2 (src/exporters/otlp-grpc-logs.ts)
      protocol: ctx.config.otlp.protocol === 'http/json' ? 'http/json' : 'http/protobuf',
      headers: ctx.config.otlp.headers,
      compression: ctx.config.otlp.compression,
      timeoutMs: ctx.config.otlp.timeout_seconds * 1000,
    });
  } else if (kind === 'ndjson') {
    exporter = new NdjsonLogExporter(cfg.ndjson_path);
  }
  if (!exporter) {
    ctx.logger.info('Log shipping is off: no OTLP logs endpoint and logs.exporter is not ndjson.');
    return undefined;
  }
  return new LogsComponent({ ctx, registry: ctx.metrics.registry, exporter });
}
