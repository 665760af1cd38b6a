import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsExporter, negotiateEncoding } from '../../../src/exporters/prometheus.js';
import { createApp, OPEN_POLICY, type AppPolicy } from '../../../src/server/app.js';
import { BasicAuth } from '../../../src/server/web-config.js';
import { makeContainerInfo } from '../../support/container-info.js';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A large exposition (like many containers) split over several chunks. */
function bigExporter(): { metrics: MetricsExporter; text: string } {
  const metrics = new MetricsExporter(new Registry());
  const lines = ['# HELP container_x_total X.', '# TYPE container_x_total counter'];
  for (let i = 0; i < 20_000; i++)
    lines.push(`container_x_total{name="c${i}",id="/docker/${i}"} ${i}`);
  const text = lines.join('\n') + '\n';
  const half = text.indexOf('\n', text.length / 2) + 1;
  metrics.addProvider({
    render: () => '',
    renderChunks: () => ({
      chunks: [Buffer.from(text.slice(0, half)), Buffer.from(text.slice(half))],
    }),
  });
  return { metrics, text };
}

async function serve(policy: AppPolicy, registry = new Registry()) {
  const { metrics, text } = bigExporter();
  const secretLabels = {
    'com.docker.compose.service': 'web',
    'traefik.http.middlewares.auth.basicauth.users': 'admin:$apr1$secret',
    'api.token': 'hunter2',
  };
  const app = createApp({
    metrics,
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => [makeContainerInfo({ id: 'a'.repeat(64), labels: secretLabels })],
    policy: () => policy,
    registry,
  });
  const handle = app.callback();
  const server = http.createServer((req, res) => void handle(req, res));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path, headers }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (b: Buffer) => parts.push(b));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(parts),
              }),
            );
          })
          .on('error', reject);
      },
    );
  return { get, text, registry };
}

describe('negotiateEncoding', () => {
  it('prefers gzip, honours q=0 and falls back to identity', () => {
    expect(negotiateEncoding(undefined)).toBe('identity');
    expect(negotiateEncoding('gzip')).toBe('gzip');
    expect(negotiateEncoding('deflate, gzip;q=0')).toBe('deflate');
    expect(negotiateEncoding('br')).toBe('identity');
    expect(negotiateEncoding('*')).toBe('gzip');
    expect(negotiateEncoding('gzip;q=0, deflate;q=0')).toBe('identity');
  });
});

describe('/metrics compression', () => {
  it('answers Accept-Encoding: gzip with a gzip body that decodes to the same exposition', async () => {
    const s = await serve(OPEN_POLICY);
    const plain = await s.get('/metrics');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString().startsWith(s.text)).toBe(true);
    const gz = await s.get('/metrics', { 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toMatch(/Accept-Encoding/);
    // streamed: no length known up front
    expect(gz.headers['transfer-encoding']).toBe('chunked');
    expect(gunzipSync(gz.body).toString()).toBe(plain.body.toString());
    expect(gz.body.length).toBeLessThan(s.text.length / 4);
    const df = await s.get('/metrics', { 'Accept-Encoding': 'deflate' });
    expect(df.headers['content-encoding']).toBe('deflate');
    expect(inflateSync(df.body).toString()).toBe(plain.body.toString());
  });
});

describe('basic auth', () => {
  const hash = bcrypt.hashSync('s3cret', 4);
  const policy: AppPolicy = {
    ...OPEN_POLICY,
    auth: new BasicAuth({ prom: hash }),
    headers: { 'X-Frame-Options': 'deny' },
  };
  const basic = (u: string, p: string) => ({
    Authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64'),
  });

  it('answers 401 with WWW-Authenticate without or with wrong credentials, and counts them', async () => {
    const s = await serve(policy);
    for (const [headers, reason] of [
      [{}, 'missing'],
      [basic('prom', 'wrong'), 'invalid'],
      [basic('nobody', 's3cret'), 'invalid'],
    ] as const) {
      const r = await s.get('/metrics', headers);
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Basic realm="harbormaster"/);
      expect(r.headers['x-frame-options']).toBe('deny');
      expect(r.body.toString()).not.toContain('container_x_total');
      expect(reason).toBeTruthy();
    }
    const counts = await s.registry.getSingleMetric('harbormaster_http_auth_failures_total')?.get();
    const by: Record<string, number> = {};
    for (const v of counts?.values ?? []) by[String(v.labels.reason)] = v.value;
    expect(by).toEqual({ missing: 1, invalid: 2, busy: 0 });
    const ok = await s.get('/metrics', basic('prom', 's3cret'));
    expect(ok.status).toBe(200);
    expect(ok.body.toString().startsWith(s.text)).toBe(true);
  });

  it('keeps /healthz open for probes only when configured; every other path is covered', async () => {
    const open = await serve(policy);
    expect((await open.get('/healthz')).status).toBe(200);
    expect((await open.get('/readyz')).status).toBe(401);
    expect((await open.get('/containers')).status).toBe(401);
    expect((await open.get('/no-such-path')).status).toBe(401);
    const closed = await serve({ ...policy, unauthenticatedPaths: [] });
    expect((await closed.get('/healthz')).status).toBe(401);
  });
});

describe('/containers', () => {
  it('shows only allowlisted labels', async () => {
    const s = await serve({ ...OPEN_POLICY, labelAllowlist: ['com.docker.compose.service'] });
    const r = await s.get('/containers');
    expect(r.status).toBe(200);
    const list = JSON.parse(r.body.toString()) as Array<{ labels: Record<string, string> }>;
    expect(list[0]?.labels).toEqual({ 'com.docker.compose.service': 'web' });
    expect(r.body.toString()).not.toContain('hunter2');
    expect(r.body.toString()).not.toContain('apr1');
  });

  it('answers 404 when turned off', async () => {
    const s = await serve({ ...OPEN_POLICY, containersEndpoint: false });
    const r = await s.get('/containers');
    expect(r.status).toBe(404);
    expect(r.body.toString()).toContain('containers_endpoint');
  });
});
