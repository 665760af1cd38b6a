/// <reference lib="dom" />
// Issue 15 acceptance 2: the status page behind the web config (exporter-toolkit format) with TLS
// and basic auth, on a real agent and a real dockerd. Without credentials `/`, `/api/v1/status`
// and the container view answer 401; with them 200. Debian's Chromium opens the page over TLS
// with the credentials (puppeteer's page.authenticate; the test CA is not in its store, so
// --ignore-certificate-errors): the container appears and its view opens, with no console error
// or CSP violation. `harbormaster status` asks it over https with --ca-file, by --url and by
// default (the listen address and the web config file, as `run` reads them).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../../src/server/web-config.js';
import type { StatusDocument } from '../../src/server/status/model.js';
import { makePki, type TestPki } from '../unit/server/certs.js';
import {
  TEST_IMAGE,
  describeDocker,
  exec,
  getDocker,
  harness,
  runContainer,
  startAgent,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const CHROMIUM = process.env.HARBORMASTER_TEST_CHROMIUM ?? '/usr/bin/chromium';
const USER = 'operator';
const PASSWORD = 'status page: s3cret';

describeDocker('status page behind TLS and basic auth', () => {
  let pki: TestPki;
  let agent: AgentProcess;
  let webFile: string;
  let browser: Browser | undefined;
  let name: string;
  let id: string;
  const profile = mkdtempSync(path.join(tmpdir(), 'hm-chromium-auth-'));
  const url = (p: string): string => `https://127.0.0.1:${agent.port}${p}`;
  const curl = (args: string[]) =>
    exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '10',
      '--cacert',
      pki.caCert,
      ...args,
    ]);

  beforeAll(async () => {
    pki = makePki();
    copyFileSync(pki.serverCert, path.join(pki.dir, 'tls.crt'));
    copyFileSync(pki.serverKey, path.join(pki.dir, 'tls.key'));
    webFile = path.join(pki.dir, 'web-config.yml');
    writeFileSync(
      webFile,
      [
        'tls_server_config:',
        '  cert_file: tls.crt',
        '  key_file: tls.key',
        'basic_auth_users:',
        `  ${USER}: '${await hashPassword(PASSWORD, 4)}'`,
      ].join('\n') + '\n',
    );
    name = uniqueName('status-auth');
    await runContainer(['-d', '--name', name, '--network', 'none', TEST_IMAGE, 'sleep', '600']);
    id = (await getDocker().dockerOk(['inspect', '-f', '{{.Id}}', name])).trim();
    agent = await startAgent({
      dockerHost: getDocker().host,
      args: ['--web-config-file', webFile, '--logs-enabled', 'false'],
    });
    await agent.waitForLog((r) => r.msg === 'Harbormaster started.', 30_000);
  });

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    rmSync(profile, { recursive: true, force: true });
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it('answers 401 without credentials and 200 with them, for the page, the JSON and the container view', async () => {
    const paths = ['/', '/api/v1/status', `/api/v1/status/container?id=${id}`];
    await waitFor(
      async () => (await curl(['-u', `${USER}:${PASSWORD}`, url(paths[2] ?? '')])).stdout === '200',
      20_000,
      250,
      'the container in the agent inventory',
    );
    for (const p of paths) {
      expect((await curl([url(p)])).stdout, `${p} without credentials`).toBe('401');
      expect((await curl(['-u', `${USER}:wrong`, url(p)])).stdout, `${p} wrong password`).toBe(
        '401',
      );
      expect((await curl(['-u', `${USER}:${PASSWORD}`, url(p)])).stdout, p).toBe('200');
    }
    // plain HTTP to the TLS port gets no status document
    const plain = await exec('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${agent.port}/`]);
    expect(plain.stdout).not.toContain('Harbormaster');
  });

  it('works in a browser over TLS with the credentials', async () => {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--ignore-certificate-errors',
        `--user-data-dir=${profile}`,
      ],
    });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await page.authenticate({ username: USER, password: PASSWORD });
    const res = await page.goto(url('/'), { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    await page.waitForSelector(`#containers-body tr[data-id="${id}"]`, { timeout: 15_000 });
    // the page refreshes itself from /api/v1/status (credentials and TLS on every fetch)
    const updated0 = await page.$eval('#updated', (e) => e.textContent);
    await waitFor(
      async () => (await page.$eval('#updated', (e) => e.textContent)) !== updated0,
      15_000,
      100,
      'a refresh over TLS',
    );
    expect(await page.$eval('#banner', (e) => e.classList.contains('hidden'))).toBe(true);
    // a locator: the table refreshes in place, and a row link found a moment before may be gone
    await page.locator(`#containers-body tr[data-id="${id}"] a`).click();
    await page.waitForSelector('#detail:not(.hidden)');
    await waitFor(
      async () => (await page.$eval('#detail-title', (e) => e.textContent)) === name,
      10_000,
      100,
      'the container view',
    );
    expect(problems).toEqual([]);
  });

  it('is asked by `harbormaster status` over https with --ca-file, by --url and by default', () => {
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [harness().agentCli, 'status', ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      });
    const auth = `https://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${agent.port}`;
    const live = cli(['--url', auth, '--ca-file', pki.caCert, '--output', 'json']);
    expect(live.status, live.stderr).toBe(0);
    const doc = JSON.parse(live.stdout) as StatusDocument;
    expect(doc.containers.map((c) => c.name)).toContain(name);
    // without credentials: 401, explained
    const bare = cli(['--url', url(''), '--ca-file', pki.caCert]);
    expect(bare.status).toBe(1);
    expect(bare.stderr).toContain('answered 401: it needs credentials');
    // no --url: the listen address over https, because the web config serves TLS
    const byDefault = cli([
      '--listen',
      `127.0.0.1:${agent.port}`,
      '--web-config-file',
      webFile,
      '--ca-file',
      pki.caCert,
    ]);
    expect(byDefault.status).toBe(1);
    expect(byDefault.stderr).toContain(
      `the agent at https://127.0.0.1:${agent.port}/api/v1/status answered 401`,
    );
  });
});
