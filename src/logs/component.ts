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
import { CheckpointStore } from './checkpoints.js';
import { BoundedQueue, ExportLoop } from './pipeline.js';
import { Tailer, type TailerStats } from './tailer.js';
import { DROP_REASONS, type DropReason, type LogExporter, type LogResource } from './types.js';

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
  container: ContainerInfo;
  lines: Record<'stdout' | 'stderr', number>;
  bytes: Record<'stdout' | 'stderr', number>;
  reported: {
    lines: Record<'stdout' | 'stderr', number>;
    bytes: Record<'stdout' | 'stderr', number>;
  };
}

export interface LogsComponentOptions {
  ctx: Pick<AgentContext, 'config' | 'logger' | 'hostName' | 'inventory'>;
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
    if (!this.firstReconcileDone) {
      this.firstReconcileDone = true;
      for (const k of this.store.keys()) if (!ids.has(k)) this.store.delete(k);
    }
  }

  private eligible(c: ContainerInfo): boolean {
    return (
      c.logDriver === 'json-file' &&
      c.logPath !== '' &&
      c.labels['harbormaster.logs.enabled'] !== 'false'
    );
  }

  private ensure(c: ContainerInfo): void {
    if (this.stopped || !this.eligible(c)) return;
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
    const checkpoint = this.store.get(c.id);
    // Only containers that existed at the very first start (first reconcile) honour start_at.
    const startAt =
      this.store.firstStart && !this.firstReconcileDone ? this.cfg.start_at : 'beginning';
    const entry: TailerEntry = {
      container: c,
      lines: { stdout: 0, stderr: 0 },
      bytes: { stdout: 0, stderr: 0 },
      reported: { lines: { stdout: 0, stderr: 0 }, bytes: { stdout: 0, stderr: 0 } },
      tailer: undefined as unknown as Tailer,
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
      sink: this.queue,
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
      if (!entry.tailer.lastPos) this.retire(c.id);
    });
  }

  private onRemoved(c: ContainerInfo): void {
    this.tailers.get(c.id)?.tailer.markRemoved();
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
    await Promise.all([...this.tailers.values()].map((e) => e.tailer.stop()));
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
    return { ok: true, detail: `${this.tailers.size} log files` };
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
      protocol: ctx.config.otlp.protocol,
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
