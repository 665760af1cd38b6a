// Log shipping: discovery of container logs and the sources that read them.
//
// Discovery follows the inventory and runs one source per container whose logs are shipped: a
// file tailer for json-file logs on a local daemon, an Engine API reader otherwise. Each source
// pushes LogRecords through the container's processing stages into the shared bounded queue; the
// export loop (pipeline.ts) delivers them and acknowledges them back to the source, whose
// ack tracker commits its checkpoint. The exporter and the telemetry are built by agent.ts and
// handed in; nothing here knows the agent.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Component, ComponentHealth } from '../component.js';
import type { Config } from '../config/schema.js';
import type { DockerClient } from '../docker/client.js';
import type { ResourceIdentity } from '../docker/identity.js';
import type { Inventory } from '../docker/inventory.js';
import type { ContainerInfo } from '../docker/types.js';
import type { Logger } from '../util/logger.js';
import { ApiLogReader, logSourceFor, type ApiLogRecord } from './api-reader.js';
import type { ApiCursor } from './checkpoints.js';
import { CheckpointStore } from './checkpoints.js';
import { startGrabber } from './grabber.js';
import { BoundedQueue, ExportLoop } from './pipeline.js';
import { processorRunSink } from './run.js';
import type { ContainerProcessor } from './processing/processor.js';
import { LogProcessor } from './processing/processor.js';
import type { ProcessingConfig } from './processing/config.js';
import { newRecord, TRUNCATED_ATTR } from './record.js';
import type { LogTelemetry, SourceStats } from './telemetry.js';
import { grabLogFile, Tailer, type GrabbedFile, type TailerStats } from './tailer.js';
import type { LogExporter, LogRecord, LogResource, RecordSink } from './types.js';

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
  proc: ContainerProcessor;
  container: ContainerInfo;
  stats: SourceStats;
}

/** A container read through the Engine API logs stream (local / journald drivers, remote daemon). */
interface ApiEntry {
  container: ContainerInfo;
  proc: ContainerProcessor;
  resource: LogResource;
  abort: AbortController;
  /** The current reader's run(); undefined when none runs. */
  running: Promise<void> | undefined;
  /** After the last record handed to processing (where a new reader resumes). */
  readCursor: ApiCursor | undefined;
  /** startedAt of the container run the last reader was started for. */
  readFor: number;
  removed: boolean;
  stats: SourceStats;
}

/** The narrow options log shipping needs (agent.ts fills them). */
export interface LogsComponentOptions {
  logs: Config['logs'];
  stateDir: string;
  /** The daemon's Docker root as the agent sees it (log paths are mapped under it). */
  dockerRoot: string;
  shutdownTimeoutSeconds: number;
  /**
   * The resource identity (src/docker/identity.ts): host.name from the daemon, service.*,
   * container.image.*, OTEL_RESOURCE_ATTRIBUTES. Asked once per container discovered.
   */
  identity: Pick<ResourceIdentity, 'container'>;
  logger: Logger;
  inventory: Pick<Inventory, 'subscribe' | 'list' | 'get' | 'ready' | 'engine'> &
    Partial<Pick<Inventory, 'onDockerEvent'>>;
  /** The daemon client (Engine API reader); without it only json-file logs are tailed. */
  docker?: Pick<DockerClient, 'endpoint' | 'apiVersion' | 'get'>;
  exporter: LogExporter;
  telemetry: LogTelemetry;
  /** Which containers to consider at all (include/exclude rules); default: all. */
  include?: (c: ContainerInfo) => boolean;
  /**
   * How logs are read: `auto` (json-file tailed when the daemon is local, the Engine API
   * otherwise), `file` (tail json-file logs even when the daemon is reached over tcp://, e.g. a
   * local socket proxy), `api` (every container through the Engine API). Default auto.
   */
  logSource?: 'auto' | 'file' | 'api';
}

/** What another component submits into the log queue (e.g. exec audit records). */
export interface LogIntake {
  /** Resolves when the queue has room; undefined when it has room now. */
  waitForSpace(): Promise<void> | undefined;
  /** A record with its own resource; its ack (if any) is acknowledged once delivered. */
  submit(record: LogRecord): void;
}

/**
 * What the log path needs of a container known only from its events (see `readOrphan`): its
 * identity and Docker's json-file path; everything else the defaults of an exited container.
 */
function orphanInfo(
  id: string,
  name: string,
  image: string,
  labels: Record<string, string>,
  dockerRootDir: string,
): ContainerInfo {
  return {
    id,
    name,
    image,
    imageId: '',
    labels,
    state: 'exited',
    pid: 0,
    createdAt: 0,
    startedAt: 0,
    finishedAt: 0,
    restartCount: 0,
    exitCode: 0,
    oomKilled: false,
    health: 'none',
    healthFailingStreak: 0,
    networkMode: '',
    logDriver: 'json-file',
    logPath: path.join(dockerRootDir, 'containers', id, `${id}-json.log`),
    cgroup: { v1: '', v2: '' },
    spec: {
      cpuShares: 0,
      cpuPeriod: 0,
      cpuQuota: 0,
      nanoCpus: 0,
      memoryLimit: 0,
      memorySwap: 0,
      memoryReservation: 0,
      pidsLimit: 0,
    },
  };
}

export class LogsComponent implements Component {
  readonly name = 'logs';
  private readonly cfg: Config['logs'];
  private readonly log: Logger;
  private store!: CheckpointStore;
  private readonly queue: BoundedQueue;
  private loop!: ExportLoop;
  private readonly tailers = new Map<string, TailerEntry>();
  private readonly apiReaders = new Map<string, ApiEntry>();
  private lp: LogProcessor;
  private unsubscribe: (() => void) | undefined;
  private unsubscribeEvents: (() => void) | undefined;
  /**
   * json-file logs opened on the container's start event, before the inspect that tells the
   * inventory about it: a `docker run --rm` container may be gone (its log file deleted) by the
   * time its tailer starts. The tailer takes the descriptor over; unclaimed ones close after 30 s.
   */
  private readonly early = new Map<string, { file: string; g: GrabbedFile; at: number }>();
  /**
   * Containers already removed (their directory gone) when their start event arrived: counted
   * once as `file_removed_unread` there, so a tailer that finds no file for them later does not
   * count them again. Entries expire with `early`.
   */
  private readonly goneAtStart = new Map<string, number>();
  private reconcileTimer: NodeJS.Timeout | undefined;
  private firstReconcileDone = false;
  private stopped = false;
  private readonly t: LogTelemetry;
  private processingCfg: ProcessingConfig;
  private labelAllowlist: readonly string[];

  constructor(private readonly o: LogsComponentOptions) {
    this.cfg = o.logs;
    this.log = o.logger.child({ component: 'logs' });
    this.t = o.telemetry;
    this.queue = new BoundedQueue(
      this.cfg.queue_max_bytes,
      this.cfg.batch_max_records,
      this.cfg.batch_max_bytes,
    );
    this.t.watchQueue(this.queue);
    this.processingCfg = this.cfg.processing;
    this.labelAllowlist = this.cfg.label_allowlist;
    this.lp = this.processor(this.cfg.processing);
  }

  private processor(cfg: ProcessingConfig): LogProcessor {
    return new LogProcessor(cfg, {
      timers: true,
      hooks: {
        drop: (reason, n) => this.t.drop(reason, n),
        event: (name, n) => this.t.event(name, n),
        warnOnce: (cause, obj, msg) => this.t.warn(cause, obj, msg),
        recordSeconds: (sec) => this.t.recordSeconds(sec),
      },
    });
  }

  /** Records of other components (own resource, own ack or none) into the same queue. */
  intake(): LogIntake {
    return {
      waitForSpace: () => this.queue.waitForSpace(),
      submit: (r) => this.queue.push(r),
    };
  }

  /**
   * New processing rules (SIGHUP): each container's held multiline groups are shipped under the
   * old rules, then the next lines go through the new ones. Nothing is lost or sent twice: the
   * records and their acks stay the same objects.
   */
  reconfigure(processing: ProcessingConfig): void {
    this.lp = this.processor(processing);
    for (const e of [...this.tailers.values(), ...this.apiReaders.values()]) {
      e.proc.flushAll();
      e.proc.close();
      e.proc = this.containerProcessor(e.container);
    }
  }

  /**
   * SIGHUP (agent.ts liveSettings): new processing rules apply to the next lines through
   * reconfigure(); a new label allowlist to the resources of containers discovered from now on;
   * the log source of running readers cannot change live (named in the result).
   */
  reload(o: {
    processing: ProcessingConfig;
    labelAllowlist: readonly string[];
    logSource: 'auto' | 'file' | 'api';
  }): string[] {
    const notes: string[] = [];
    if (JSON.stringify(o.processing) !== JSON.stringify(this.processingCfg)) {
      this.processingCfg = o.processing;
      this.reconfigure(o.processing);
    }
    if (JSON.stringify(o.labelAllowlist) !== JSON.stringify(this.labelAllowlist)) {
      this.labelAllowlist = o.labelAllowlist;
      notes.push(
        'logs.label_allowlist applies to containers discovered after the reload; running ones keep their attributes until they restart',
      );
    }
    if (o.logSource !== (this.o.logSource ?? 'auto'))
      notes.push(
        'docker.log_source needs a restart of the agent (running readers keep their source)',
      );
    return notes;
  }

  private containerProcessor(c: ContainerInfo): ContainerProcessor {
    return this.lp.forContainer(
      c.labels,
      { emit: (r) => this.queue.push(r), hold: (d) => this.queue.hold(d) },
      c.name,
    );
  }

  start(): Promise<void> {
    this.store = new CheckpointStore(this.o.stateDir, this.log, this.cfg.checkpoint_fsync);
    this.loop = new ExportLoop({
      exporter: this.o.exporter,
      checkpoints: this.store,
      queue: this.queue,
      batchDelayMs: this.cfg.batch_delay_seconds * 1000,
      retryInitialMs: this.cfg.retry_initial_seconds * 1000,
      retryMaxMs: this.cfg.retry_max_seconds * 1000,
      hooks: {
        exported: (b) => this.t.exported(b),
        exportFailure: (kind, err, batch) => this.t.exportFailure(kind, err, batch),
        retry: () => this.t.retry(),
        drop: (r, n) => this.t.drop(r, n),
        warn: (c, obj, msg) => this.t.warn(c, obj, msg),
        checkpointFailed: (err) => this.t.checkpointFailed(err, this.store.file),
        exportSeconds: (s) => this.t.exportSeconds(s),
        checkpointSeconds: (s) => this.t.checkpointSeconds(s),
      },
    });
    this.loop.start();
    // The grabber thread is up before the first tailer watches a file (src/logs/grabber.ts).
    const grabber = this.o.logSource === 'api' ? Promise.resolve(true) : startGrabber();
    return grabber.then((up) => {
      if (!up)
        this.log.warn(
          'The log file grabber thread did not start: new log files are found by the main thread alone (notifications and polls), which may miss a short-lived generation on a busy host.',
        );
      if (!this.stopped) this.follow();
    });
  }

  /** Follows the inventory and the daemon's events: a source per container (start's second half). */
  private follow(): void {
    this.unsubscribeEvents = this.o.inventory.onDockerEvent?.((ev) => {
      if (ev.Type !== 'container' || !ev.Actor?.ID) return;
      if (ev.Action === 'start') this.grabEarly(ev.Actor.ID);
      else if (ev.Action === 'destroy') this.readOrphan(ev.Actor.ID, ev.Actor.Attributes ?? {});
    });
    this.unsubscribe = this.o.inventory.subscribe((ev) => {
      if (ev.type === 'removed') this.onRemoved(ev.container);
      else this.ensure(ev.container);
    });
    const tick = (): void => {
      if (this.stopped) return;
      this.reconcile();
      // A state dir in fault is tried again without waiting for new acks: fixing it (remount
      // read-write, free space, replace a file by a directory) recovers without a restart.
      if (this.store.fault && this.firstReconcileDone)
        this.store
          .flush(true)
          .catch((err: unknown) => this.t.checkpointFailed(err, this.store.file));
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
  }

  /** Opens the json-file log of a container that just started (see `early`). */
  private grabEarly(id: string): void {
    if (this.stopped || this.tailers.has(id) || this.early.has(id)) return;
    if (this.o.logSource === 'api' || !/^[0-9a-f]{64}$/.test(id)) return;
    const root = this.o.inventory.engine()?.dockerRootDir;
    if (!root) return;
    // Docker's json-file path; another driver has no such file and nothing is opened.
    const file = mapLogPath(
      path.join(root, 'containers', id, `${id}-json.log`),
      root,
      this.o.dockerRoot,
    );
    const g = grabLogFile(file);
    if (g) {
      this.early.set(id, { file, g, at: Date.now() });
      return;
    }
    // No file, and the container's directory is gone while Docker's containers directory is
    // there: Docker removed the container (a `docker run --rm` that exited) before its start
    // event reached the agent, so what it printed cannot be read. Counted, never silent.
    const dir = path.dirname(file);
    if (!existsSync(dir) && existsSync(path.dirname(dir))) {
      this.goneAtStart.set(id, Date.now());
      this.t.drop('file_removed_unread', 1);
      this.t.warn(
        'removed_before_start_event',
        { container: id.slice(0, 12), file },
        'A container was removed (its log file deleted) before its start event reached the agent: what it printed was not read. Counted in harbormaster_log_drops_total{reason="file_removed_unread"}; logged once.',
      );
    }
  }

  /**
   * A container destroyed while its log, opened on the start event, was never claimed by a
   * tailer: the inventory never knew it, or knew it only from before its start (no log path
   * yet), because Docker removed it before the inspect. Its tailer is made from what the
   * inventory or the event says (name, image, labels) and reads the held descriptor to its
   * end, then retires like any removed container. Waits a moment first, so an inspect that is
   * still under way claims it the normal way.
   */
  private readOrphan(id: string, attrs: Readonly<Record<string, string>>): void {
    if (!this.early.has(id)) return;
    const t = setTimeout(() => {
      const e = this.early.get(id);
      if (this.stopped || !e || this.tailers.has(id)) return;
      const root = this.o.inventory.engine()?.dockerRootDir ?? '';
      // The inventory may know it from its create event, inspected before Docker set a log path
      // (LogPath is '' until the start): no tailer was made for it, and the start's inspect came
      // too late. Its identity comes from there, else from the events.
      const known = this.o.inventory.get(id);
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(attrs))
        if (k !== 'name' && k !== 'image' && k !== 'exitCode' && k !== 'execDuration')
          labels[k] = v;
      const orphan = orphanInfo(
        id,
        known?.name ?? attrs.name ?? id.slice(0, 12),
        known?.image ?? attrs.image ?? '',
        known ? { ...known.labels } : labels,
        root,
      );
      this.ensure(known ? { ...orphan, imageId: known.imageId } : orphan);
      // already gone: read to the end, then retire (not wait for a restart)
      this.tailers.get(id)?.tailer.markRemoved();
    }, 1000);
    t.unref();
  }

  private expireEarly(all = false): void {
    const now = Date.now();
    for (const [id, e] of this.early) {
      if (!all && now - e.at < 30_000) continue;
      this.early.delete(id);
      void e.g.fh.close();
    }
    for (const [id, at] of this.goneAtStart)
      if (all || now - at >= 30_000) this.goneAtStart.delete(id);
  }

  private reconcile(): void {
    this.expireEarly();
    const inv = this.o.inventory;
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
    if (this.o.include && !this.o.include(c)) return 'none';
    if (!this.lp.enabled(c.labels)) return 'none';
    const docker = this.o.docker;
    const tailable = c.logDriver === 'json-file' && c.logPath !== '';
    if (!docker) return tailable ? 'file' : 'none';
    return logSourceFor(c, docker.endpoint, this.o.logSource ?? 'auto');
  }

  private resourceOf(c: ContainerInfo): LogResource {
    return { key: c.id, attributes: this.o.identity.container(c, this.labelAllowlist) };
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
    const file = mapLogPath(c.logPath, this.o.inventory.engine()?.dockerRootDir, this.o.dockerRoot);
    const early = this.early.get(c.id);
    this.early.delete(c.id);
    const grabbed = early && early.file === file ? early.g : undefined;
    if (early && !grabbed) void early.g.fh.close();
    const checkpoint = this.store.get(c.id);
    // Only containers that existed at the very first start (first reconcile) honour start_at.
    const startAt =
      this.store.firstStart && !this.firstReconcileDone ? this.cfg.start_at : 'beginning';
    const entry: TailerEntry = {
      container: c,
      tailer: undefined as unknown as Tailer,
      proc: this.containerProcessor(c),
      stats: this.t.addSource(
        c.id,
        c.name,
        'file',
        () => entry.tailer.bytesBehind(),
        () => entry.tailer.oldestUnshippedMs(),
      ),
    };
    const stats: TailerStats = {
      lines: (stream, n, b) => {
        entry.stats.lines[stream] += n;
        entry.stats.bytes[stream] += b;
      },
      drop: (r, n) => {
        // already counted when its start event found the container gone (see goneAtStart)
        if (r === 'file_removed_unread' && this.goneAtStart.has(c.id)) return;
        this.t.drop(r, n);
      },
      truncated: () => this.t.truncated(),
      lost: (reason, bytes) => this.t.lost(reason, bytes),
      debug: (obj, msg) => this.log.debug({ ...obj, container: c.name }, msg),
      warn: (cause, obj, msg) => {
        entry.stats.lastError = msg;
        this.t.warn(cause, { ...obj, container: c.name }, msg);
      },
    };
    const resource = this.resourceOf(c);
    const sink: RecordSink = {
      waitForSpace: () => this.queue.waitForSpace(),
      push: (r) => entry.proc.push(r),
      hold: (d) => this.queue.hold(d),
      // Runs of encoded lines (src/logs/run.ts) while the container's processor passes lines as bytes.
      ...(this.o.exporter.acceptsRuns
        ? {
            runs: processorRunSink({
              processor: () => entry.proc,
              push: (run) => this.queue.push(run),
              batchRecords: this.cfg.batch_max_records,
              batchBytes: this.cfg.batch_max_bytes,
              resource,
            }),
          }
        : {}),
    };
    entry.tailer = new Tailer({
      key: c.id,
      path: file,
      resource,
      sink,
      stats,
      ...(checkpoint ? { checkpoint } : {}),
      commit: (cp) => {
        if (this.tailers.get(c.id) !== entry) return; // retired: leave no entry behind
        this.store.set(c.id, cp);
        if (entry.tailer.done && entry.tailer.unacknowledged === 0) this.retire(c.id);
      },
      // The last records of a finished tailer may be no commit point (a fragment of a line the
      // container never finished, flushed at the end): their acks move no checkpoint.
      idle: () => {
        if (this.tailers.get(c.id) === entry && entry.tailer.done) this.retire(c.id);
      },
      startAt,
      maxLineBytes: this.cfg.max_line_bytes,
      chunkBytes: this.cfg.read_chunk_bytes,
      partialFlushMs: this.cfg.partial_flush_seconds * 1000,
      pollMs: this.cfg.poll_interval_seconds * 1000,
      ...(grabbed ? { grabbed } : {}),
    });
    this.tailers.set(c.id, entry);
    entry.tailer.start();
    if (c.state !== 'running' && c.state !== 'restarting' && c.state !== 'paused')
      entry.tailer.containerStopped();
    void entry.tailer.finished.then(() => {
      // Everything is read: ship what multiline grouping still holds.
      entry.proc.flushAll();
      if (entry.tailer.unacknowledged === 0) this.retire(c.id);
    });
  }

  private ensureApi(c: ContainerInfo): void {
    if (!this.o.docker) return;
    let e = this.apiReaders.get(c.id);
    if (!e) {
      let cursor = this.store.getApi(c.id);
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
        proc: this.containerProcessor(c),
        resource: this.resourceOf(c),
        abort: new AbortController(),
        running: undefined,
        readCursor: cursor,
        readFor: -1,
        removed: false,
        stats: this.t.addSource(c.id, c.name, 'api'),
      };
      this.apiReaders.set(c.id, e);
    }
    e.container = c;
    // One reader per run of the container: the stream ends when it stops; a new run (restart)
    // gets a new reader that resumes after the last record read.
    if (!e.running && !e.removed && e.readFor !== c.startedAt) this.startApiReader(e);
  }

  private startApiReader(e: ApiEntry): void {
    const docker = this.o.docker!;
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
      hold: (d) => this.queue.hold(d),
      onCommit: (cursor) => {
        // A reader that is gone for good: its late commits leave no entry behind.
        if (this.apiReaders.get(id) === e) this.store.setApi(id, cursor);
      },
      onRecords: (batch: ApiLogRecord[]) => {
        const observedMs = Date.now();
        for (const r of batch) {
          const sec = r.timeUnixNano / 1_000_000_000n;
          if (r.truncated) this.t.truncated();
          e.stats.lines[r.stream]++;
          e.stats.bytes[r.stream] += r.body.length;
          e.proc.push(
            newRecord(
              e.resource,
              r.stream,
              r.body,
              Number(sec),
              Number(r.timeUnixNano - sec * 1_000_000_000n),
              observedMs,
              r.ack,
              r.truncated ? { [TRUNCATED_ATTR]: true } : undefined,
            ),
          );
          e.readCursor = r.cursor;
        }
        return this.queue.waitForSpace();
      },
      onProblem: (reason, message) => {
        e.stats.lastError = message.slice(0, 300);
        this.t.warn(
          `api-reader:${reason}`,
          { container: e.container.name, reason, detail: message.slice(0, 300) },
          'Reading a container log through the Engine API had a problem (logged once per kind).',
        );
      },
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
        const now = this.o.inventory.get(id);
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
    this.t.removeSource(id);
  }

  private onRemoved(c: ContainerInfo): void {
    this.tailers.get(c.id)?.tailer.markRemoved();
    const e = this.apiReaders.get(c.id);
    if (e) {
      e.removed = true;
      if (!e.running) this.retireApi(c.id);
    }
  }

  private retire(id: string): void {
    const e = this.tailers.get(id);
    if (!e) return;
    this.tailers.delete(id);
    e.proc.close();
    this.store.delete(id);
    this.t.removeSource(id);
    void e.tailer.stop();
    // No entry stays behind in the file until the next delivery (a quiet host may have none);
    // while stopping, the export loop's last flush writes it.
    if (!this.stopped)
      this.store.flush().catch((err: unknown) => this.t.checkpointFailed(err, this.store.file));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    this.unsubscribe?.();
    this.unsubscribeEvents?.();
    this.expireEarly(true);
    for (const e of this.apiReaders.values()) e.abort.abort();
    await Promise.all([
      ...[...this.tailers.values()].map((e) => e.tailer.stop()),
      ...[...this.apiReaders.values()].map((e) => e.running),
    ]);
    // Held multiline groups go into the drain (their lines are re-read if it does not finish:
    // their acks hold every source's checkpoint before their first line).
    for (const e of [...this.tailers.values(), ...this.apiReaders.values()]) {
      e.proc.flushAll();
      e.proc.close();
    }
    const drainMs = Math.max(500, (this.o.shutdownTimeoutSeconds - 2) * 1000);
    await this.loop?.stop(drainMs);
    await this.store?.close();
    await this.o.exporter.shutdown?.();
  }

  health(): ComponentHealth {
    const l = this.loop;
    // A broken state dir degrades log shipping (no persisted checkpoints); it does not stop it.
    const fault = this.store?.fault;
    if (fault) return { ok: true, detail: `log checkpoints are not persisted: ${fault}` };
    const notice = this.store?.notice;
    if (l && l.consecutiveFailures > 0)
      return {
        ok: true,
        detail: `export retrying (${l.consecutiveFailures}): ${l.lastError ?? ''}`,
      };
    return {
      ok: true,
      detail:
        `${this.tailers.size} log files, ${this.apiReaders.size} Engine API log streams` +
        (notice ? ` (${notice})` : ''),
    };
  }
}
