// `harbormaster status` against a real HTTP server serving the real status routes (static
// containers, no Docker), against a closed port, and against a server that wants credentials.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsExporter } from '../../src/exporters/prometheus.js';
import { statusRoutes } from '../../src/server/status/routes.js';
import { createApp } from '../../src/server/app.js';
import type { StatusDocument } from '../../src/server/status/model.js';
import { runStatus, urlForListen } from '../../src/status-cli.js';
import { makeContainerInfo } from '../support/container-info.js';
import { makePki } from './server/certs.js';
import { staticStatusSources } from '../support/status-sources.js';

const servers: http.Server[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function agentLike(serve = listen): Promise<string> {
  const infos = [
    makeContainerInfo({ id: 'a'.repeat(64), name: 'web' }),
    makeContainerInfo({ id: 'b'.repeat(64), name: 'evil\u001b[2Jname', state: 'exited' }),
  ];
  const { sources, lifecycle } = staticStatusSources(infos, {
    logs: {
      containers: new Map([
        [
          'a'.repeat(64),
          { linesRead: 1234, linesShipped: 1200, bytesBehind: 2048, lastError: null },
        ],
      ]),
      queue: { records: 5, bytes: 512 },
      exported: 1200,
      lastSuccessAt: Date.UTC(2026, 0, 2, 3, 4, 5),
      lastError: 'HTTP 503',
      exportFailures: { retryable: 3, permanent: 0 },
      drops: { rotated_away: 1, filter_drop: 0 },
    },
    findings: new Map([
      [
        'a'.repeat(64),
        [
          { check: 'capabilities', severity: 'high', cis: '5.3', what: 'x', allowed: false },
          { check: 'pids_limit', severity: 'low', cis: '5.28', what: 'y', allowed: true },
        ],
      ],
    ]),
  });
  lifecycle.set('a'.repeat(64), {
    restarts: 4,
    runs: 5,
    lastExit: { code: 137, at: 1, oomKilled: true },
    oomKills: 2,
  });
  const app = createApp({
    metrics: new MetricsExporter(),
    ready: () => ({ ok: true }),
    components: () => ({}),
    containers: () => infos,
    routes: statusRoutes(sources),
  });
  const cb = app.callback();
  return serve((req, res) => void cb(req, res));
}

async function status(flags: Record<string, string>) {
  let out = '';
  let err = '';
  const code = await runStatus({
    flags,
    env: {},
    out: (s) => (out += s),
    err: (s) => (err += s),
    timeoutMs: 3000,
  });
  return { code, out, err };
}

describe('harbormaster status', () => {
  it('prints the agent, log shipping and every container as a table', async () => {
    const url = await agentLike();
    const r = await status({ url });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`Harbormaster 9.9.9 on host-1 (${url})`);
    expect(r.out).toMatch(/^Docker daemon: connected unix:\/\/\/var\/run\/docker.sock, API 1.47/m);
    expect(r.out).toMatch(
      /^OTLP logs: http:\/\/127.0.0.1:4318\/v1\/logs \(http\/protobuf\) FAILING, last error: export retrying \(3\): HTTP 503$/m,
    );
    expect(r.out).toMatch(
      /^Log shipping: queue 5 records \(512B\), exported 1200, last export 2026-01-02T03:04:05.000Z, last export error: HTTP 503, export failures retryable 3, drops rotated_away 1$/m,
    );
    const lines = r.out.split('\n');
    const head = lines.find((l) => l.startsWith('NAME'));
    expect(head).toMatch(
      /NAME +IMAGE +STATE +HEALTH +UPTIME +RESTARTS +LAST EXIT +OOM +CPU +MEMORY\/LIMIT +LOG SHIPPED +LOG BEHIND +LOG ERROR +FINDINGS/,
    );
    const web = lines.find((l) => l.startsWith('web '));
    expect(web).toMatch(
      /web +busybox:1.36 +running +none +\S+ +4 +137 OOM +2 +- +- +1200\/1234 +2.0KiB +- +1$/,
    );
    // a hostile name cannot drive the terminal
    expect(r.out).not.toContain('\u001b');
    expect(r.out).toContain('evil?[2Jname');
  });

  it('prints the JSON document with --output json', async () => {
    const r = await status({ url: await agentLike(), output: 'json' });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as StatusDocument;
    expect(doc.containers.map((c) => c.name)).toEqual(['evil\u001b[2Jname', 'web']);
    expect(doc.containers[1]?.logs?.linesRead).toBe(1234);
  });

  it('says it cannot reach a stopped agent, with the URL it tried, and exits 3', async () => {
    const url = await listen(() => undefined);
    servers.pop()?.close();
    await new Promise((r) => setTimeout(r, 50));
    const r = await status({ url });
    expect(r.code).toBe(3);
    expect(r.err).toContain(`cannot reach the agent at ${url}/api/v1/status: ECONNREFUSED`);
  });

  it('sends the credentials of the URL as basic auth, and explains a 401', async () => {
    let seen: string | undefined;
    const url = await listen((req, res) => {
      seen = req.headers.authorization;
      res.statusCode = 401;
      res.end('unauthorized');
    });
    const bare = await status({ url });
    expect(bare.code).toBe(1);
    expect(bare.err).toContain('answered 401: it needs credentials');
    const withCreds = await status({ url: url.replace('http://', 'http://admin:s%3Acret@') });
    expect(seen).toBe('Basic ' + Buffer.from('admin:s:cret').toString('base64'));
    expect(withCreds.err).toContain('the ones given were refused');
    expect(withCreds.err).not.toContain('s%3Acret');
    // a bad escape in the password: a clear message, no request, the password not echoed
    seen = undefined;
    const bad = await status({ url: url.replace('http://', 'http://admin:pw%E0x@') });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('bad percent-encoding');
    expect(bad.err).not.toContain('pw%E0x');
    expect(seen).toBeUndefined();
  });

  it('rejects what is not a status document, and bad options', async () => {
    const url = await listen((_req, res) => res.end('{"hello":"world"}'));
    expect((await status({ url })).err).toContain(
      'did not answer with a Harbormaster status document',
    );
    expect((await status({ url, output: 'yaml' })).code).toBe(2);
    expect((await status({ url: 'ftp://x' })).code).toBe(2);
  });

  it('asks an agent serving TLS over https: with --url and --ca-file, and by default when the web config has TLS', async () => {
    const pki = makePki();
    dirs.push(pki.dir);
    const url = await agentLike(async (handler) => {
      const server = https.createServer(
        { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
        handler,
      );
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    const viaUrl = await status({ url, 'ca-file': pki.caCert });
    expect(viaUrl.code, viaUrl.err).toBe(0);
    expect(viaUrl.out).toContain(`Harbormaster 9.9.9 on host-1 (${url})`);
    // without the CA the certificate is not trusted: said, not crashed
    const untrusted = await status({ url });
    expect(untrusted.code).toBe(3);
    expect(untrusted.err).toContain(`cannot reach the agent at ${url}/api/v1/status`);
    // no --url: the listen address, over https because the web config file serves TLS
    const webFile = path.join(pki.dir, 'web.yml');
    writeFileSync(
      webFile,
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n`,
    );
    const byConfig = await status({
      listen: url.replace('https://', ''),
      'web-config-file': webFile,
      'ca-file': pki.caCert,
    });
    expect(byConfig.code, byConfig.err).toBe(0);
    expect(byConfig.out).toContain(`(${url})`);
  });

  it('defaults to the configured listen address on this machine', () => {
    expect(urlForListen('0.0.0.0:9105', true)).toBe('https://127.0.0.1:9105');
    expect(urlForListen('0.0.0.0:9105')).toBe('http://127.0.0.1:9105');
    expect(urlForListen('[::]:9105')).toBe('http://[::1]:9105');
    expect(urlForListen('10.1.2.3:80')).toBe('http://10.1.2.3:80');
  });
});
