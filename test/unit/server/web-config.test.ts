import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../../src/config/load.js';
import { BasicAuth, loadWebConfig } from '../../../src/server/web-config.js';
import { makePki } from './certs.js';

const pki = makePki();
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
let n = 0;
function load(yaml: string): { web: ReturnType<typeof loadWebConfig>; problems: ConfigProblem[] } {
  const file = path.join(pki.dir, `w${n++}.yml`);
  writeFileSync(file, yaml);
  const problems: ConfigProblem[] = [];
  return { web: loadWebConfig(file, problems), problems };
}
const paths = (p: ConfigProblem[]): string[] => p.map((x) => x.path);

describe('loadWebConfig (exporter-toolkit format)', () => {
  it('reads a node_exporter style file; relative paths are relative to the file', () => {
    const hash = bcrypt.hashSync('pw', 4);
    const { web, problems } = load(
      [
        'tls_server_config:',
        '  cert_file: server.crt',
        '  key_file: server.key',
        '  client_ca_file: ca.crt',
        '  min_version: TLS13',
        '  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]',
        '  curve_preferences: [X25519, CurveP256]',
        'http_server_config:',
        '  http2: true',
        '  headers:',
        '    Strict-Transport-Security: max-age=31536000',
        '    X-Content-Type-Options: nosniff',
        'basic_auth_users:',
        `  prometheus: '${hash}'`,
      ].join('\n'),
    );
    expect(problems).toEqual([]);
    expect(web?.tls?.certFile).toBe(path.join(pki.dir, 'server.crt'));
    // a client CA without a policy means verified client certificates, as in the toolkit
    expect(web?.tls?.clientAuth).toBe('RequireAndVerifyClientCert');
    expect(web?.tls?.minVersion).toBe('TLSv1.3');
    expect(web?.tls?.ciphers).toBe('ECDHE-RSA-AES128-GCM-SHA256');
    expect(web?.tls?.ecdhCurve).toBe('X25519:P-256');
    expect(web?.headers['X-Content-Type-Options']).toBe('nosniff');
    expect(Object.keys(web?.users ?? {})).toEqual(['prometheus']);
  });

  it('names every bad key', () => {
    const { web, problems } = load(
      [
        'tls_server_config:',
        `  cert_file: ${pki.serverCert}`,
        `  key_file: ${pki.serverKey}`,
        '  client_auth_type: RequireAndVerifyClientCert',
        '  min_version: TLS14',
        'http_server_config:',
        '  headers:',
        '    X-Powered-By: me',
        'basic_auth_users:',
        '  alice: plaintext',
        'tls_config: {}',
      ].join('\n'),
    );
    expect(web).toBeUndefined();
    expect(paths(problems)).toEqual(
      expect.arrayContaining([
        'web_config_file: tls_server_config.min_version',
        'web_config_file: http_server_config.headers.X-Powered-By',
        'web_config_file: basic_auth_users.alice',
        'web_config_file: tls_config',
      ]),
    );
    expect(problems.find((p) => p.path.endsWith('alice'))?.message).toMatch(/bcrypt/);
  });

  it('rejects a verifying client policy without a CA, and a key that does not match the certificate', () => {
    const a = load(
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n  client_auth_type: RequireAndVerifyClientCert\n`,
    );
    expect(paths(a.problems)).toEqual(['web_config_file: tls_server_config.client_ca_file']);
    const b = load(
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.clientKey}\n`,
    );
    expect(paths(b.problems)).toEqual(['web_config_file: tls_server_config']);
    expect(b.problems[0]?.message).toMatch(/cannot be used/);
    const c = load(
      `tls_server_config:\n  cert_file: /nonexistent/x.crt\n  key_file: ${pki.serverKey}\n`,
    );
    expect(c.problems[0]?.message).toMatch(/nonexistent/);
  });

  it('reports an unreadable file with its path', () => {
    const problems: ConfigProblem[] = [];
    expect(loadWebConfig('/nonexistent/web.yml', problems)).toBeUndefined();
    expect(problems[0]?.message).toMatch(/cannot read \/nonexistent\/web.yml/);
  });
});

describe('BasicAuth', () => {
  it('accepts the right password only, for known users only', async () => {
    const auth = new BasicAuth({ prom: bcrypt.hashSync('right', 4) });
    const h = (u: string, p: string): string =>
      'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
    expect(await auth.check(undefined)).toBe('missing');
    expect(await auth.check('Bearer abc')).toBe('missing');
    expect(await auth.check(h('prom', 'wrong'))).toBe('invalid');
    expect(await auth.check(h('other', 'right'))).toBe('invalid');
    expect(await auth.check('Basic !!!')).toBe('invalid');
    expect(await auth.check(h('prom', 'right'))).toBe('ok');
    // remembered, and still only for the right password
    expect(await auth.check(h('prom', 'right'))).toBe('ok');
    expect(await auth.check(h('prom', 'right2'))).toBe('invalid');
    expect(await auth.check(h('prom', 'right:x'))).toBe('invalid');
  });

  it('bounds the password checks a flood can start; remembered credentials never wait', async () => {
    const auth = new BasicAuth({ prom: bcrypt.hashSync('right', 8) });
    const h = (u: string, p: string): string =>
      'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
    expect(await auth.check(h('prom', 'right'))).toBe('ok');
    const flood = Array.from({ length: 60 }, (_, i) => auth.check(h('prom', `wrong${i}`)));
    // while 60 wrong passwords queue up, the scraper's remembered credentials pass at once
    expect(await auth.check(h('prom', 'right'))).toBe('ok');
    const results = await Promise.all(flood);
    expect(results.filter((r) => r === 'busy').length).toBe(60 - 2 - 32);
    expect(results.filter((r) => r === 'invalid').length).toBe(34);
  });
});
