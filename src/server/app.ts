import { Readable } from 'node:stream';
import Koa from 'koa';
import { Counter, type Registry } from 'prom-client';
import type { ComponentHealth } from '../component.js';
import type { ContainerInfo } from '../docker/types.js';
import {
  compressChunks,
  negotiateEncoding,
  wantsOpenMetrics,
  type MetricsExporter,
} from '../exporters/prometheus.js';
import { BasicAuth } from './web-config.js';

/**
 * What may change while the agent runs (SIGHUP): read on every request, so a reload is one
 * assignment in the agent.
 */
export interface AppPolicy {
  /** Basic auth (disabled when it has no users). */
  auth: BasicAuth;
  /** Response headers from the web config's http_server_config. */
  headers: Readonly<Record<string, string>>;
  /** Paths served without basic auth (probes). */
  unauthenticatedPaths: readonly string[];
  /** false: /containers answers 404. */
  containersEndpoint: boolean;
  /** The only container labels /containers shows (the metrics allowlist). */
  labelAllowlist: readonly string[];
}

export const OPEN_POLICY: AppPolicy = {
  auth: new BasicAuth({}),
  headers: {},
  unauthenticatedPaths: ['/healthz'],
  containersEndpoint: true,
  labelAllowlist: [],
};

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
  /** Auth, headers and endpoint switches; default: open, everything served. */
  policy?: () => AppPolicy;
  /** Extra GET routes by exact path (they override the built-in ones, e.g. a status page at `/`). */
  routes?: Readonly<Record<string, RouteHandler>>;
  /** Where harbormaster_http_auth_failures_total is registered (none: not counted). */
  registry?: Registry;
  onError?: (err: unknown) => void;
}

/** The labels a container shows on /containers: only the allowlisted ones. */
export function allowlistedLabels(
  labels: Readonly<Record<string, string>>,
  allowlist: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of allowlist) if (Object.hasOwn(labels, k)) out[k] = labels[k] as string;
  return out;
}

/** The HTTP routes behind headers → method check → basic auth (listen() happens in the agent). */
export function createApp(deps: AppDeps): Koa {
  const policy = deps.policy ?? ((): AppPolicy => OPEN_POLICY);
  const authFailures = deps.registry
    ? new Counter({
        name: 'harbormaster_http_auth_failures_total',
        help: 'Requests refused by basic auth, by reason (missing, invalid: unknown user or wrong password, both 401; busy: 503 while too many password checks run at once).',
        labelNames: ['reason'],
        registers: [deps.registry],
      })
    : undefined;
  authFailures?.inc({ reason: 'missing' }, 0);
  authFailures?.inc({ reason: 'invalid' }, 0);
  authFailures?.inc({ reason: 'busy' }, 0);

  const builtIn: Record<string, RouteHandler> = {
    '/healthz': (ctx) => {
      ctx.body = { status: 'ok', components: deps.components() };
    },
    '/readyz': (ctx) => {
      const r = deps.ready();
      ctx.status = r.ok ? 200 : 503;
      ctx.body = { status: r.ok ? 'ready' : 'not ready', detail: r.detail };
    },
    '/metrics': async (ctx) => {
      const { contentType, chunks, length, release } = await deps.metrics.renderBody(
        wantsOpenMetrics(ctx.get('accept')),
      );
      // the chunks' memory is reused by the next collection once the response is done with it
      ctx.res.once('close', release);
      ctx.type = contentType;
      ctx.vary('Accept-Encoding');
      const encoding =
        ctx.method === 'GET' ? negotiateEncoding(ctx.get('accept-encoding')) : 'identity';
      if (encoding !== 'identity') {
        ctx.set('Content-Encoding', encoding);
        ctx.body = compressChunks(chunks, encoding);
        return;
      }
      // megabytes at thousands of containers: write the chunks as they are, no joined copy
      ctx.body = chunks.length === 1 ? chunks[0] : Readable.from(chunks, { objectMode: false });
      ctx.length = length;
    },
    '/containers': (ctx) => {
      const p = policy();
      if (!p.containersEndpoint) {
        ctx.status = 404;
        ctx.body = { error: '/containers is turned off (http.containers_endpoint: false)' };
        return;
      }
      ctx.body = deps
        .containers()
        .map((c) => ({
          id: c.id,
          name: c.name,
          image: c.image,
          state: c.state,
          health: c.health,
          labels: allowlistedLabels(c.labels, p.labelAllowlist),
          restartCount: c.restartCount,
          exitCode: c.exitCode,
          logDriver: c.logDriver,
          cgroup: c.cgroup.v1,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    '/': (ctx) => {
      ctx.type = 'text/html';
      ctx.body =
        '<html><head><title>Harbormaster</title></head><body><h1>Harbormaster</h1><ul>' +
        '<li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>' +
        '<li><a href="/readyz">/readyz</a></li><li><a href="/containers">/containers</a></li></ul></body></html>';
    },
  };
  const routes: Record<string, RouteHandler> = { ...builtIn, ...deps.routes };

  const app = new Koa();
  app.silent = true;
  app.on('error', (err) => deps.onError?.(err));
  // response headers from the web config, on every answer (401 and 404 included)
  app.use(async (ctx, next) => {
    for (const [k, v] of Object.entries(policy().headers)) ctx.set(k, v);
    await next();
  });
  app.use(async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      return;
    }
    await next();
  });
  app.use(async (ctx, next) => {
    const p = policy();
    if (p.auth.enabled && !p.unauthenticatedPaths.includes(ctx.path)) {
      const result = await p.auth.check(ctx.get('authorization') || undefined);
      if (result === 'busy') {
        authFailures?.inc({ reason: result });
        ctx.status = 503;
        ctx.set('Retry-After', '1');
        ctx.body = { error: 'too many password checks at once; retry' };
        return;
      }
      if (result !== 'ok') {
        authFailures?.inc({ reason: result });
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Basic realm="harbormaster", charset="UTF-8"');
        ctx.body = { error: 'authentication required' };
        return;
      }
    }
    await next();
  });
  app.use(async (ctx) => {
    const handler = Object.hasOwn(routes, ctx.path) ? routes[ctx.path] : undefined;
    if (!handler) {
      ctx.status = 404;
      ctx.body = { error: `no route ${ctx.path}; try /metrics, /healthz or /readyz` };
      return;
    }
    await handler(ctx);
  });
  return app;
}
