import { Readable } from 'node:stream';
import Koa from 'koa';
import type { ComponentHealth } from '../component.js';
import type { ContainerInfo } from '../docker/types.js';
import { wantsOpenMetrics, type MetricsExporter } from '../exporters/prometheus.js';

/** A GET route; another module registers its routes through AppDeps.routes. */
export type RouteHandler = (ctx: Koa.Context) => void | Promise<void>;

export interface AppDeps {
  metrics: MetricsExporter;
  /** Readiness: the inventory is synced with the daemon. */
  ready: () => ComponentHealth;
  /** Per-component health, reported by /healthz for information (the process is alive if it answers). */
  components: () => Record<string, ComponentHealth>;
  /** The inventory, for operators and tests (`GET /containers`). */
  containers: () => ContainerInfo[];
  /** Extra GET routes by exact path (they override the built-in ones, e.g. a status page at `/`). */
  routes?: Readonly<Record<string, RouteHandler>>;
  onError?: (err: unknown) => void;
}

/** The HTTP routes (listen() happens in the agent). */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  app.on('error', (err) => deps.onError?.(err));
  app.use(async (ctx) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      return;
    }
    const extra =
      deps.routes && Object.hasOwn(deps.routes, ctx.path) ? deps.routes[ctx.path] : undefined;
    if (extra) {
      await extra(ctx);
      return;
    }
    switch (ctx.path) {
      case '/healthz':
        ctx.body = { status: 'ok', components: deps.components() };
        return;
      case '/readyz': {
        const r = deps.ready();
        ctx.status = r.ok ? 200 : 503;
        ctx.body = { status: r.ok ? 'ready' : 'not ready', detail: r.detail };
        return;
      }
      case '/metrics': {
        const { contentType, chunks, length, release } = await deps.metrics.renderBody(
          wantsOpenMetrics(ctx.get('accept')),
        );
        // the chunks' memory is reused by the next collection once the response is done with it
        ctx.res.once('close', release);
        ctx.type = contentType;
        // megabytes at thousands of containers: write the chunks as they are, no joined copy
        ctx.body = chunks.length === 1 ? chunks[0] : Readable.from(chunks, { objectMode: false });
        ctx.length = length;
        return;
      }
      case '/containers':
        ctx.body = deps
          .containers()
          .map((c) => ({
            id: c.id,
            name: c.name,
            image: c.image,
            state: c.state,
            health: c.health,
            labels: c.labels,
            restartCount: c.restartCount,
            exitCode: c.exitCode,
            logDriver: c.logDriver,
            cgroup: c.cgroup.v1,
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
        return;
      case '/':
        ctx.type = 'text/html';
        ctx.body =
          '<html><head><title>Harbormaster</title></head><body><h1>Harbormaster</h1><ul>' +
          '<li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>' +
          '<li><a href="/readyz">/readyz</a></li><li><a href="/containers">/containers</a></li></ul></body></html>';
        return;
      default:
        ctx.status = 404;
        ctx.body = { error: `no route ${ctx.path}; try /metrics, /healthz or /readyz` };
    }
  });
  return app;
}
