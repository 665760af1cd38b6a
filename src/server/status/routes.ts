/**
 * The status routes, by exact path, for the app's route table (AppDeps.routes), so they sit
 * behind whatever the app puts in front of its routes (method check, TLS, basic auth):
 *   GET /                                  the status page (HTML, strict CSP)
 *   GET /api/v1/status                     the status document (JSON)
 *   GET /api/v1/status/container?id=ID     one container with its labels and usage history
 */
import type Koa from 'koa';
import { buildContainerDetail, buildStatus, type StatusSources } from './model.js';
import { STATUS_PAGE_CSP, renderStatusPage } from './page.js';

export interface StatusRoutesOptions {
  /** How often the page refreshes itself (default 3 s). */
  refreshMs?: number;
}

export type StatusRouteHandler = (ctx: Koa.Context) => void | Promise<void>;

function common(ctx: Koa.Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
}

/** The status routes over `sources`, keyed by exact path. */
export function statusRoutes(
  sources: StatusSources,
  opts: StatusRoutesOptions = {},
): Record<string, StatusRouteHandler> {
  const refreshMs = opts.refreshMs ?? 3000;
  return {
    '/': (ctx) => {
      common(ctx);
      ctx.set('Content-Security-Policy', STATUS_PAGE_CSP);
      ctx.set('X-Frame-Options', 'DENY');
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = renderStatusPage(buildStatus(sources), refreshMs);
    },
    '/api/v1/status': (ctx) => {
      common(ctx);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(buildStatus(sources));
    },
    '/api/v1/status/container': (ctx) => {
      common(ctx);
      const id = typeof ctx.query.id === 'string' ? ctx.query.id : '';
      if (!id) {
        ctx.status = 400;
        ctx.body = {
          error: 'which container? /api/v1/status/container?id=ID (full or 12+ characters)',
        };
        return;
      }
      const detail = buildContainerDetail(sources, id);
      if (!detail) {
        ctx.status = 404;
        ctx.body = { error: `no container ${JSON.stringify(id.slice(0, 80))} in the inventory` };
        return;
      }
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(detail);
    },
  };
}
