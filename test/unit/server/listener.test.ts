import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../../src/config/load.js';
import { HttpListener, type HttpLimits } from '../../../src/server/listener.js';
import { EMPTY_WEB_CONFIG, loadWebConfig, type WebConfig } from '../../../src/server/web-config.js';
import { makePki } from './certs.js';

const pki = makePki();
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });
const limits: HttpLimits = {
  idleTimeoutMs: 30_000,
  headerTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 128,
  reservedDescriptors: 0,
};
const listeners: HttpListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

function webConfig(yaml: string): WebConfig {
  const file = path.join(pki.dir, `web-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, yaml);
  const problems: ConfigProblem[] = [];
  const web = loadWebConfig(file, problems);
  expect(problems).toEqual([]);
  return web as WebConfig;
}

async function start(web: WebConfig, over: Partial<HttpLimits> = {}, openFiles?: number) {
  const registry = new Registry();
  const l = new HttpListener({
    host: '127.0.0.1',
    port: 0,
    handler: (_req, res) => res.end('ok'),
    web,
    limits: { ...limits, ...over },
    logger,
    registry,
    openFilesLimit: openFiles,
  });
  listeners.push(l);
  const address = await l.listen();
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const counter = async (name: string, labels: Record<string, string> = {}) => {
    const m = await registry.getSingleMetric(name)?.get();
    return (m?.values ?? [])
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((a, v) => a + v.value, 0);
  };
  return { l, port, counter };
}

const waitUntil = async (fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** A TLS request; resolves with the served certificate's CN and the body, rejects on handshake failure. */
function tlsGet(
  port: number,
  client?: { cert: string; key: string },
): Promise<{ cn: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readPem(pki.caCert),
      cert: client ? readPem(client.cert) : undefined,
      key: client ? readPem(client.key) : undefined,
    });
    let body = '';
    let cn = '';
    s.once('secureConnect', () => {
      cn = String(s.getPeerCertificate().subject.CN);
      s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.once('error', reject);
    s.once('close', () =>
      body.includes('200 OK') ? resolve({ cn, body }) : reject(new Error(`closed: ${body}`)),
    );
  });
}
const readPem = (f: string): string => readFileSync(f, 'utf8');

describe('HttpListener TLS', () => {
  it('serves a certificate replaced on disk without a restart', async () => {
    const dir = path.join(pki.dir, 'rot');
    mkdirSync(dir, { recursive: true });
    copyFileSync(pki.serverCert, path.join(dir, 'tls.crt'));
    copyFileSync(pki.serverKey, path.join(dir, 'tls.key'));
    const web = webConfig(
      `tls_server_config:\n  cert_file: ${dir}/tls.crt\n  key_file: ${dir}/tls.key\n`,
    );
    const { port, counter } = await start(web);
    expect((await tlsGet(port)).cn).toBe('server-one');
    const [cert, key] = pki.issueServer('server2', 'server-two');
    // rotation as cert-manager does it: new files renamed into place
    copyFileSync(key, path.join(dir, 'tls.key.new'));
    copyFileSync(cert, path.join(dir, 'tls.crt.new'));
    renameSync(path.join(dir, 'tls.key.new'), path.join(dir, 'tls.key'));
    renameSync(path.join(dir, 'tls.crt.new'), path.join(dir, 'tls.crt'));
    await waitUntil(async () => (await tlsGet(port)).cn === 'server-two');
    expect(
      await counter('harbormaster_http_tls_certificate_reloads_total', { result: 'success' }),
    ).toBe(1);
  });

  it('fails the handshake of a client certificate from another CA under RequireAndVerifyClientCert', async () => {
    const web = webConfig(
      [
        'tls_server_config:',
        `  cert_file: ${pki.serverCert}`,
        `  key_file: ${pki.serverKey}`,
        `  client_ca_file: ${pki.caCert}`,
        '  client_auth_type: RequireAndVerifyClientCert',
      ].join('\n') + '\n',
    );
    const { port, counter } = await start(web);
    await expect(tlsGet(port, { cert: pki.strangerCert, key: pki.strangerKey })).rejects.toThrow();
    await expect(tlsGet(port)).rejects.toThrow();
    expect((await tlsGet(port, { cert: pki.clientCert, key: pki.clientKey })).body).toContain('ok');
    await waitUntil(
      async () => (await counter('harbormaster_http_tls_handshake_failures_total')) >= 2,
    );
  });

  it('refuses TLS 1.2 clients with min_version TLS13', async () => {
    const web = webConfig(
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n  min_version: TLS13\n`,
    );
    const { port, counter } = await start(web);
    await expect(
      new Promise((resolve, reject) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          ca: readPem(pki.caCert),
          maxVersion: 'TLSv1.2',
        });
        s.once('secureConnect', () => resolve(s.destroy()));
        s.once('error', reject);
      }),
    ).rejects.toThrow();
    await waitUntil(
      async () =>
        (await counter('harbormaster_http_tls_handshake_failures_total', {
          reason: 'protocol',
        })) === 1,
    );
  });
});

describe('HttpListener bounds', () => {
  const openIdle = (port: number, n: number): Promise<net.Socket[]> =>
    Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => resolve(s));
            s.on('error', reject);
          }),
      ),
    );

  it('closes connections that send nothing within the idle timeout', async () => {
    const { port, counter } = await start(EMPTY_WEB_CONFIG, { idleTimeoutMs: 300 });
    const socks = await openIdle(port, 20);
    const closed = socks.map(
      (s) => new Promise<number>((r) => s.once('close', () => r(Date.now()))),
    );
    const t0 = Date.now();
    const at = await Promise.all(closed);
    expect(Math.max(...at) - t0).toBeLessThan(300 + 1000);
    expect(
      await counter('harbormaster_http_connections_closed_total', { reason: 'idle_timeout' }),
    ).toBe(20);
  });

  it('at the cap, evicts the quietest connection so a scrape still gets in', async () => {
    const { port, counter } = await start(EMPTY_WEB_CONFIG, { maxConnections: 3 });
    const socks = await openIdle(port, 3);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('ok');
    expect(await counter('harbormaster_http_connections_closed_total', { reason: 'evicted' })).toBe(
      1,
    );
    for (const s of socks) s.destroy();
  });

  it('caps connections below the open-files limit minus the reserved descriptors', async () => {
    const { counter } = await start(
      EMPTY_WEB_CONFIG,
      { maxConnections: 500, reservedDescriptors: 256 },
      300,
    );
    expect(await counter('harbormaster_http_max_connections')).toBe(44);
  });
});
