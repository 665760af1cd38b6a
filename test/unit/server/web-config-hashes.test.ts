// bcrypt hashes as other tools write them: every prefix and cost bcrypt can check loads and
// verifies; a hash no password could ever match is refused with the file, naming the user.
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ConfigProblem } from '../../../src/config/load.js';
import { MetricsExporter } from '../../../src/exporters/prometheus.js';
import { createApp, OPEN_POLICY } from '../../../src/server/app.js';
import { BasicAuth, loadWebConfig } from '../../../src/server/web-config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-hashes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function load(yaml: string): { users?: Record<string, string>; problems: ConfigProblem[] } {
  const file = path.join(dir, `w${n++}.yml`);
  writeFileSync(file, yaml);
  const problems: ConfigProblem[] = [];
  return { users: loadWebConfig(file, problems)?.users, problems };
}
const basic = (u: string, p: string): string =>
  'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
// one hash, its version prefix and cost swapped (the salt and digest stay valid bcrypt text)
const base = bcrypt.hashSync('pw', 4);
const variant = (prefix: string, cost: string): string => `${prefix}${cost}${base.slice(6)}`;

describe('basic_auth_users hashes', () => {
  it('accepts $2a$, $2b$ and $2y$ (htpasswd) hashes and checks passwords against them', async () => {
    for (const prefix of ['$2a$', '$2b$', '$2y$']) {
      const { users, problems } = load(`basic_auth_users:\n  prom: '${variant(prefix, '04')}'\n`);
      expect(problems).toEqual([]);
      const auth = new BasicAuth(users ?? {});
      expect(await auth.check(basic('prom', 'pw'))).toBe('ok');
      expect(await auth.check(basic('prom', 'nope'))).toBe('invalid');
    }
  });

  it('refuses a cost outside 04..31 and the $2$ prefix at load, naming the user', () => {
    for (const hash of [variant('$2b$', '03'), variant('$2b$', '32'), variant('$2$', '10')]) {
      const { users, problems } = load(`basic_auth_users:\n  prom: '${hash}'\n`);
      expect(users).toBeUndefined();
      expect(problems).toHaveLength(1);
      expect(problems[0]?.path).toBe('web_config_file: basic_auth_users.prom');
      expect(problems[0]?.message).toMatch(/bcrypt/);
    }
  });

  it('answers 401 (not 500) for a hash bcrypt cannot use, without an error per request', async () => {
    const errors: unknown[] = [];
    const metrics = new MetricsExporter(new Registry());
    const app = createApp({
      metrics,
      ready: () => ({ ok: true }),
      components: () => ({}),
      containers: () => [],
      policy: () => ({ ...OPEN_POLICY, auth: new BasicAuth({ prom: variant('$2b$', '32') }) }),
      onError: (err) => errors.push(err),
    });
    const handle = app.callback();
    const server = http.createServer((req, res) => void handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
          headers: { authorization: basic('prom', 'pw') },
        });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
      }
      expect(errors).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('makes an unknown user pay the cost of the most expensive configured hash, and never lets it in', async () => {
    const cheap = bcrypt.hashSync('pw', 4);
    const dear = bcrypt.hashSync('other', 6);
    const auth = new BasicAuth({ a: cheap, b: dear });
    const spy = vi.spyOn(bcrypt, 'compare'); // calls through: only records the hashes used
    const compared = (): unknown[] => spy.mock.calls.map((c) => c[1]);
    try {
      // the password of the dear hash under an unknown name: compared against that hash, refused
      expect(await auth.check(basic('mallory', 'other'))).toBe('invalid');
      expect(await auth.check(basic('mallory', 'other'))).toBe('invalid');
      expect(compared()).toEqual([dear, dear]);
      expect(await auth.check(basic('b', 'other'))).toBe('ok');
    } finally {
      spy.mockRestore();
    }
  });
});
