import { hostname } from 'node:os';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Component, ComponentHealth } from './component.js';
import type { Config } from './config/schema.js';
import { containerSelection } from './docker/selection.js';
import { DockerClient } from './docker/client.js';
import { ResourceIdentity } from './docker/identity.js';
import { Inventory } from './docker/inventory.js';
import { EXIT_STALE_SOCKET } from './docker/socket-wait.js';
import { OomTracker } from './collectors/oom.js';
import { metricsFeature } from './collectors/metrics-feature.js';
import { eventLoopLagRegistry, replacesFamily } from './collectors/event-loop.js';
import { lifecycleFeature } from './collectors/lifecycle/index.js';
import { LogsComponent, type LogIntake } from './logs/component.js';
import { LogTelemetry } from './logs/telemetry.js';
import type { LogExporter } from './logs/types.js';
import { NdjsonLogExporter } from './exporters/ndjson.js';
import { otlpSignalDisabled, resolveOtlpSignal } from './exporters/otlp-env.js';
import { otlpLogsExporter } from './exporters/otlp-logs.js';
import { securityFeature } from './collectors/security.js';
import { MetricsExporter, omitFamilies } from './exporters/prometheus.js';
import { spanSpoolFor } from './exporters/span-spool.js';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { statusRoutes } from './server/status/routes.js';
import { createStatusFeature, type StatusFeature } from './server/status/wiring.js';
import { createApp, type AppPolicy } from './server/app.js';
import { HttpListener, type HttpLimits } from './server/listener.js';
import { BasicAuth, loadWebConfig, type WebConfig } from './server/web-config.js';
import { ConfigError, type ConfigProblem } from './config/load.js';
import { applyReload, type LiveSettings, type ReloadReport } from './reload.js';
import { MetricsFeature } from './collectors/metrics-feature.js';
import { setLogLevel, type Logger } from './util/logger.js';
import { VERSION } from './version.js';

/** What every component factory gets: the shared parts of the agent. */
export interface AgentContext {
  config: Config;
  logger: Logger;
  metrics: MetricsExporter;
  docker: DockerClient;
  inventory: Inventory;
  /** host.name as ResourceIdentity resolves it (the daemon's Name once it has answered). */
  readonly hostName: string;
  /** The one module that turns the host and containers into resource attributes. */
  identity: ResourceIdentity;
  /** Shared by the cgroup collector and lifecycle: OOM kills without double counting. */
  oom: OomTracker;
  /** Keeps run spans the OTLP receiver does not take (state-dir spool); undefined: off. */
  wrapSpanExporter?: (exporter: SpanExporter) => SpanExporter;
  /** The log path's metrics and per-container stats (made on first use: log shipping, status). */
  readonly logTelemetry: LogTelemetry;
  /**
   * Where other components put log records (exec audit): the log pipeline's intake, undefined
   * when log shipping is off (logs.enabled=false, OTEL_LOGS_EXPORTER=none, no endpoint). Features
   * built after logsFeature see it.
   */
  logIntake(): LogIntake | undefined;
}

/** A factory returns undefined when its feature is switched off. */
export type ComponentFactory = (ctx: AgentContext) => Component | undefined;

/**
 * Feature components, in start order (stopped in reverse). Each issue's feature adds its factory here.
 */
const FEATURES: ComponentFactory[] = [
  metricsFeature,
  // before lifecycle: its exec audit records go through the log pipeline, which stops after it
  logsFeature,
  lifecycleFeature,
  securityFeature,
];

/**
 * The log exporter the config asks for; undefined when logs have nowhere to go. OTLP settings come
 * from the same resolver as the traces exporter (src/exporters/otlp-env.ts): endpoint, headers
 * (and their files), timeout, compression, protocol (grpc uses the gRPC transport), certificate
 * and client certificate/key; OTEL_SDK_DISABLED / OTEL_LOGS_EXPORTER=none switch OTLP logs off.
 * Warnings about settings without effect are logged here, once. Throws OtlpSettingsError for
 * settings that cannot work (naming the key and the variable).
 */
export function buildLogExporter(config: Config, logger?: Logger): LogExporter | undefined {
  const cfg = config.logs;
  const off = otlpSignalDisabled(config.otlp, 'logs');
  if (off && cfg.exporter !== 'ndjson') {
    logger?.info(`Logs are not exported over OTLP: ${off}.`);
    return undefined;
  }
  const settings = cfg.exporter === 'ndjson' ? undefined : resolveOtlpSignal(config.otlp, 'logs');
  const kind = cfg.exporter === 'auto' ? (settings ? 'otlp' : undefined) : cfg.exporter;
  if (kind === 'otlp') {
    if (!settings)
      throw new Error(
        'logs.exporter is otlp but no OTLP endpoint is set (otlp.endpoint, otlp.logs_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)',
      );
    for (const w of settings.warnings) logger?.warn(w);
    return otlpLogsExporter(settings);
  }
  if (kind === 'ndjson') return new NdjsonLogExporter(cfg.ndjson_path);
  return undefined;
}

/** Log shipping: the exporter and telemetry are built here and handed in with narrow options. */
function logsFeature(ctx: AgentContext): Component | undefined {
  const { config } = ctx;
  if (!config.logs.enabled) return undefined;
  const exporter = buildLogExporter(config, ctx.logger);
  if (!exporter) {
    ctx.logger.info('Log shipping is off: no OTLP logs endpoint and logs.exporter is not ndjson.');
    return undefined;
  }
  return new LogsComponent({
    logs: config.logs,
    stateDir: config.state_dir,
    dockerRoot: config.docker_root,
    shutdownTimeoutSeconds: config.shutdown_timeout_seconds,
    identity: ctx.identity,
    logger: ctx.logger,
    inventory: ctx.inventory,
    docker: ctx.docker,
    logSource: config.docker.log_source,
    include: containerSelection({
      include: config.logs.include_containers,
      exclude: config.logs.exclude_containers,
    }),
    exporter,
    telemetry: ctx.logTelemetry,
  });
}

/** The web config file of a configuration, validated; throws ConfigError naming the key. */
export function readWebConfig(config: Config): WebConfig {
  const problems: ConfigProblem[] = [];
  const web = loadWebConfig(config.web_config_file, problems);
  if (!web) throw new ConfigError(problems);
  return web;
}

function httpLimits(config: Config): HttpLimits {
  const h = config.http;
  return {
    idleTimeoutMs: h.idle_timeout_seconds * 1000,
    headerTimeoutMs: h.header_timeout_seconds * 1000,
    requestTimeoutMs: h.request_timeout_seconds * 1000,
    maxConnections: h.max_connections,
    reservedDescriptors: h.reserved_descriptors,
  };
}

function appPolicy(config: Config, web: WebConfig): AppPolicy {
  return {
    auth: new BasicAuth(web.users),
    headers: web.headers,
    unauthenticatedPaths: config.http.unauthenticated_paths,
    containersEndpoint: config.http.containers_endpoint,
    labelAllowlist: config.metrics.label_allowlist,
  };
}

/**
 * What the log pipeline may take on SIGHUP. The logs component applies it through a
 * `reload(options)` method; until it has one, these settings are named as needing a restart.
 */
export interface LogsReloadOptions {
  processing: Config['logs']['processing'];
  labelAllowlist: readonly string[];
  logSource: Config['docker']['log_source'];
}

type LogsReload = (o: LogsReloadOptions) => void | Promise<void>;

export function parseListen(listen: string): { host: string; port: number } {
  const idx = listen.lastIndexOf(':');
  const host = listen.slice(0, idx).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(listen.slice(idx + 1)) };
}

/** The composition root: builds the components, starts them, stops them. */
export class Agent {
  readonly ctx: AgentContext;
  private readonly components: Component[] = [];
  private listener: HttpListener | undefined;
  private web: WebConfig;
  private policy: AppPolicy;
  private readonly reloads: Counter<'result'>;
  private readonly controller = new AbortController();
  private stopping: Promise<void> | undefined;
  private readonly status: StatusFeature | undefined;
  /** Who stops the process when a component asks for an exit (the CLI), or the request waiting for it. */
  private exitHandler: ((code: number, reason: string) => void) | undefined;
  private pendingExit: { code: number; reason: string } | undefined;
  address: string | undefined;

  constructor(config: Config, logger: Logger, extra: ComponentFactory[] = []) {
    this.web = readWebConfig(config);
    this.policy = appPolicy(config, this.web);
    const metrics = new MetricsExporter();
    new Gauge({
      name: 'harbormaster_build_info',
      help: 'Build information of the running agent (always 1).',
      labelNames: ['version', 'nodejs_version'],
      registers: [metrics.registry],
    }).set({ version: VERSION, nodejs_version: process.versions.node }, 1);
    // The agent's own cost: process_cpu_seconds_total, process_resident_memory_bytes, nodejs_*.
    // prom-client's nodejs_active_*_total are gauges named like counters (promtool rejects
    // them), so they are left out.
    const processRegistry = new Registry();
    // the event-loop delay monitor samples every 10 ms by default: 100 wake-ups a second cost
    // ~1 % of a core on an idle host; once a second is plenty for an agent
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 1000 });
    // its nodejs_eventloop_lag_p50... include that 1 s: served corrected by collectors/event-loop
    const lagRegistry = eventLoopLagRegistry(undefined, undefined, {
      log: logger.child({ component: 'event-loop' }),
      signal: this.controller.signal,
    });
    metrics.addProvider({
      render: async () =>
        omitFamilies(
          await processRegistry.metrics(),
          (name) => name.startsWith('nodejs_active_') || replacesFamily(name),
        ) + (await lagRegistry.metrics()),
    });
    const docker = new DockerClient({
      host: config.docker.host,
      tlsVerify: config.docker.tls_verify,
      certPath: config.docker.cert_path,
      apiVersion: config.docker.api_version,
      requestTimeoutMs: config.docker.request_timeout_seconds * 1000,
    });
    const inventory = new Inventory({
      client: docker,
      logger,
      registry: metrics.registry,
      removedGraceMs: config.docker.removed_grace_seconds * 1000,
      maxBackoffMs: config.docker.reconnect_max_backoff_seconds * 1000,
      heartbeatMs: config.docker.heartbeat_seconds * 1000,
      heartbeatTimeoutMs: config.docker.heartbeat_timeout_seconds * 1000,
      procRoot: config.proc_root,
      onStaleSocket: (message) => this.requestExit(EXIT_STALE_SOCKET, message),
    });
    const identity = new ResourceIdentity({
      hostName: config.host_name,
      daemonInfo: () => inventory.engine()?.info,
      fallbackHostName: hostname(),
      resourceAttributes: config.otlp.resource_attributes,
      serviceName: config.otlp.service_name,
      version: VERSION,
    });
    this.reloads = new Counter({
      name: 'harbormaster_config_reloads_total',
      help: 'SIGHUP reloads of the configuration, by result (success, rejected: the file failed validation and the running configuration stayed).',
      labelNames: ['result'],
      registers: [metrics.registry],
    });
    this.reloads.inc({ result: 'success' }, 0);
    this.reloads.inc({ result: 'rejected' }, 0);
    let logTelemetry: LogTelemetry | undefined;
    this.ctx = {
      config,
      logger,
      metrics,
      docker,
      inventory,
      get hostName() {
        return identity.hostName();
      },
      identity,
      oom: new OomTracker(),
      wrapSpanExporter: spanSpoolFor(config, logger, metrics.registry),
      get logTelemetry() {
        logTelemetry ??= new LogTelemetry(metrics.registry, logger.child({ component: 'logs' }));
        return logTelemetry;
      },
      logIntake: () => {
        for (const c of this.components) if (c instanceof LogsComponent) return c.intake();
        return undefined;
      },
    };
    this.components.push(inventory);
    for (const f of [...FEATURES, ...extra]) {
      const c = f(this.ctx);
      if (c) this.components.push(c);
    }
    this.status = createStatusFeature(this.ctx, this.components, () => this.componentHealth());
    if (this.status) this.components.push(this.status.sampler);
  }

  private componentHealth(): Record<string, ComponentHealth> {
    const out: Record<string, ComponentHealth> = {};
    for (const c of this.components) out[c.name] = c.health();
    return out;
  }

  async start(): Promise<void> {
    const { logger, config, metrics, inventory } = this.ctx;
    const app = createApp({
      metrics,
      ready: () => inventory.health(),
      components: () => this.componentHealth(),
      containers: () => inventory.list(),
      routes: this.status
        ? statusRoutes(this.status.sources, { refreshMs: config.status.refresh_seconds * 1000 })
        : undefined,
      policy: () => this.policy,
      registry: metrics.registry,
      onError: (err) => logger.warn({ err }, 'An HTTP request failed.'),
    });
    const { host, port } = parseListen(config.listen);
    const handler = app.callback();
    const listener = new HttpListener({
      host,
      port,
      handler: (req, res) => void handler(req, res),
      web: this.web,
      limits: httpLimits(config),
      logger: logger.child({ component: 'http' }),
      registry: metrics.registry,
    });
    try {
      this.address = await listener.listen();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        code === 'EADDRINUSE'
          ? `cannot listen on ${config.listen}: the address is already in use (set --listen or HARBORMASTER_LISTEN to another port)`
          : `cannot listen on ${config.listen}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.listener = listener;
    logger.info(
      {
        address: this.address,
        tls: listener.tlsEnabled,
        basicAuth: this.policy.auth.enabled,
      },
      'HTTP server listening',
    );
    for (const c of this.components) {
      await c.start(this.controller.signal);
    }
    logger.info(
      {
        version: VERSION,
        components: this.components.map((c) => c.name),
        daemon: this.ctx.docker.endpoint.url,
      },
      'Harbormaster started.',
    );
  }

  /**
   * `handler` is called (once) when a component finds the agent cannot go on and a restart is
   * the cure (e.g. a stale Docker socket mount: EXIT_STALE_SOCKET); it stops the agent and exits
   * with `code`.
   */
  onExitRequest(handler: (code: number, reason: string) => void): void {
    this.exitHandler = handler;
    const p = this.pendingExit;
    this.pendingExit = undefined;
    if (p) handler(p.code, p.reason);
  }

  private requestExit(code: number, reason: string): void {
    if (this.exitHandler) return this.exitHandler(code, reason);
    this.ctx.logger.error({ exitCode: code }, `${reason} (No one to stop the process yet.)`);
    this.pendingExit ??= { code, reason };
  }

  /** Stops every component in reverse order; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.controller.abort();
      // Leave a second of the shutdown budget for the HTTP server and the exit itself; a
      // component that takes longer (e.g. a flush to a receiver that hangs) is abandoned.
      const deadline =
        Date.now() + Math.max(500, (this.ctx.config.shutdown_timeout_seconds - 1) * 1000);
      for (const c of [...this.components].reverse()) {
        const left = deadline - Date.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          const outcome = await Promise.race([
            c.stop().then(() => 'stopped' as const),
            new Promise<'late'>((resolve) => {
              timer = setTimeout(() => resolve('late'), Math.max(0, left));
            }),
          ]);
          if (outcome === 'late')
            this.ctx.logger.warn(
              { component: c.name },
              'A component did not stop within the shutdown budget; abandoning what it had in flight.',
            );
        } catch (err) {
          this.ctx.logger.error({ err, component: c.name }, 'A component failed to stop cleanly.');
        } finally {
          clearTimeout(timer);
        }
      }
      await this.listener?.close();
    })();
    return this.stopping;
  }

  /** The settings that can change while running, each with the component that applies them. */
  private liveSettings(): { groups: LiveSettings[]; web: LiveSettings } {
    const web: LiveSettings = {
      keys: ['web_config_file', 'http', 'metrics.label_allowlist'],
      apply: (next) => {
        const webConfig = readWebConfig(next);
        const notes = this.listener?.reload(webConfig, httpLimits(next)) ?? [];
        this.web = webConfig;
        this.policy = appPolicy(next, webConfig);
        return notes;
      },
    };
    const groups: LiveSettings[] = [
      { keys: ['log_level'], apply: (next) => setLogLevel(this.ctx.logger, next.log_level) },
      web,
      {
        keys: ['metrics.label_allowlist'],
        apply: (next) => {
          for (const c of this.components)
            if (c instanceof MetricsFeature)
              c.reload({ labelAllowlist: next.metrics.label_allowlist });
        },
      },
      {
        keys: ['logs.processing', 'logs.label_allowlist', 'docker.log_source'],
        apply: (next) => {
          // >>> LOG PIPELINE RELOAD CALL SITE: the one place log settings reach the logs component.
          const logs: (Component & { reload?: LogsReload }) | undefined = this.components.find(
            (c) => c.name === 'logs',
          );
          if (!logs) return;
          if (!logs.reload)
            throw new Error('the log pipeline cannot take new settings while running yet');
          return logs.reload({
            processing: next.logs.processing,
            labelAllowlist: next.logs.label_allowlist,
            logSource: next.docker.log_source,
          });
        },
      },
    ];
    return { groups, web };
  }

  /**
   * SIGHUP: `load` re-reads and validates the configuration as at startup. A ConfigError leaves
   * everything as it was (logged with every problem and its key); otherwise live settings are
   * applied and the ones that need a restart are named.
   */
  async reload(load: () => Config): Promise<ReloadReport | undefined> {
    const { logger } = this.ctx;
    let next: Config;
    try {
      next = load();
      readWebConfig(next);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.reloads.inc({ result: 'rejected' });
      logger.error(
        { problems: err.problems },
        `Reload rejected; the running configuration stays. ${err.message}`,
      );
      return undefined;
    }
    const { groups, web } = this.liveSettings();
    const report = await applyReload(this.ctx.config, next, groups, new Set([web]));
    this.ctx.config = report.effective;
    this.reloads.inc({ result: 'success' });
    logger.info(
      { changed: report.changed, applied: report.applied },
      'Configuration reloaded (the web config file is re-read every time).',
    );
    if (report.restartNeeded.length)
      logger.warn(
        { settings: report.restartNeeded },
        `These settings changed but keep their old value until a restart: ${report.restartNeeded.join('; ')}.`,
      );
    return report;
  }
}
