/**
 * The status routes, registered on the agent's koa app with one call (app.ts) so they sit behind
 * whatever the app puts in front of its routes (TLS, basic auth, compression):
 *   GET /                               the status page (HTML, strict CSP)
 *   GET /api/v1/status                  the status document (JSON)
 *   GET /api/v1/status/containers/:id   one container with its labels and usage history
 * Other paths fall through to the next middleware.
 */
import type { Middleware } from 'koa';
import {
  buildContainerDetail,
  buildStatus,
  type StatusDocument,
  type StatusSources,
} from './model.js';
import { STATUS_PAGE_CSP, renderStatusPage } from './page.js';

export interface StatusRoutesOptions {
  /** How often the page refreshes itself (default 3 s). */
  refreshMs?: number;
}

const CONTAINER_PREFIX = '/api/v1/status/containers/';

async function document(s: StatusSources): Promise<StatusDocument> {
  await s.logs?.refresh();
  return buildStatus(s);
}

/** Koa middleware serving the status page and API from `sources`. */
export function statusRoutes(sources: StatusSources, opts: StatusRoutesOptions = {}): Middleware {
  const refreshMs = opts.refreshMs ?? 3000;
  return async (ctx, next) => {
    const path = ctx.path;
    const mine = path === '/' || path === '/api/v1/status' || path.startsWith(CONTAINER_PREFIX);
    if (!mine || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) {
      await next();
      return;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    if (path === '/') {
      ctx.set('Content-Security-Policy', STATUS_PAGE_CSP);
      ctx.set('X-Frame-Options', 'DENY');
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = renderStatusPage(await document(sources), refreshMs);
      return;
    }
    if (path === '/api/v1/status') {
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(await document(sources));
      return;
    }
    let id: string;
    try {
      id = decodeURIComponent(path.slice(CONTAINER_PREFIX.length));
    } catch {
      id = '';
    }
    await sources.logs?.refresh();
    const detail = id && !id.includes('/') ? buildContainerDetail(sources, id) : undefined;
    if (!detail) {
      ctx.status = 404;
      ctx.body = { error: `no container ${JSON.stringify(id.slice(0, 80))} in the inventory` };
      return;
    }
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(detail);
  };
}
