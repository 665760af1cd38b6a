// client_allowed_sans as exporter-toolkit compares them (Go: DNS names, e-mail addresses, URIs
// and IP addresses in net.IP's text form), through a real TLS handshake with the listener:
// an IPv6 SAN written `::1` in the web config matches the certificate's address (Node prints it
// as 0:0:0:0:0:0:0:1), and a SAN whose value holds a comma (Node prints it JSON-quoted) is one
// value: it matches an allowed entry as a whole and cannot pose as a second, allowed SAN.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../../src/config/load.js';
import { HttpListener } from '../../../src/server/listener.js';
import { loadWebConfig, type WebConfig } from '../../../src/server/web-config.js';
import { makePki } from './certs.js';

const pki = makePki();
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
const listeners: HttpListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

/** A client certificate from the test CA with the given subjectAltName section lines. */
function clientCert(name: string, alt: string[]): { cert: string; key: string } {
  const ext = path.join(pki.dir, `${name}.ext`);
  writeFileSync(
    ext,
    ['subjectAltName=@alt', 'extendedKeyUsage=clientAuth', '[alt]', ...alt, ''].join('\n'),
  );
  const run = (args: string[]) =>
    execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]),
  );
  run(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key'].concat([
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      ext,
    ]),
  );
  return {
    cert: readFileSync(path.join(pki.dir, `${name}.crt`), 'utf8'),
    key: readFileSync(path.join(pki.dir, `${name}.key`), 'utf8'),
  };
}

async function start(allowed: string[]): Promise<number> {
  const file = path.join(pki.dir, `web-${listeners.length}.yml`);
  writeFileSync(
    file,
    [
      'tls_server_config:',
      `  cert_file: ${pki.serverCert}`,
      `  key_file: ${pki.serverKey}`,
      `  client_ca_file: ${pki.caCert}`,
      '  client_auth_type: RequireAndVerifyClientCert',
      `  client_allowed_sans: ${JSON.stringify(allowed)}`,
    ].join('\n') + '\n',
  );
  const problems: ConfigProblem[] = [];
  const web = loadWebConfig(file, problems);
  expect(problems).toEqual([]);
  const l = new HttpListener({
    host: '127.0.0.1',
    port: 0,
    handler: (_req, res) => res.end('ok'),
    web: web as WebConfig,
    limits: {
      idleTimeoutMs: 10_000,
      headerTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      maxConnections: 16,
      reservedDescriptors: 0,
    },
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  listeners.push(l);
  const address = await l.listen();
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** 'ok' when the request is answered, 'refused' when the connection is closed without one. */
function request(port: number, client: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), ...client });
    let body = '';
    s.once('secureConnect', () =>
      s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.on('error', () => undefined);
    s.once('close', () => resolve(body.includes('200 OK') ? 'ok' : 'refused'));
  });
}

describe('client_allowed_sans', () => {
  it('matches an IPv6 SAN written as Go prints it (::1)', async () => {
    const port = await start(['::1']);
    expect(await request(port, clientCert('v6', ['IP.1 = ::1']))).toBe('ok');
    expect(await request(port, clientCert('v6other', ['IP.1 = ::2']))).toBe('refused');
  });

  it('reads a SAN holding a comma as one value: allowed as a whole, never as its parts', async () => {
    const port = await start(['prometheus']);
    expect(await request(port, clientCert('plain', ['DNS.1 = prometheus']))).toBe('ok');
    expect(
      await request(port, clientCert('sneaky', ['email.1 = a@evil.example,DNS:prometheus,x'])),
    ).toBe('refused');
    // the whole value, comma and all, is one SAN that can be allowed on its own
    const exact = await start(['a@evil.example,DNS:prometheus,x']);
    expect(
      await request(exact, clientCert('sneaky2', ['email.1 = a@evil.example,DNS:prometheus,x'])),
    ).toBe('ok');
  });
});
