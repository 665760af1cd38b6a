// Issue 12, acceptance 1 and 3, through the built agent: TLS with a required, verified client
// certificate and basic auth (exporter-toolkit web config) scraped by a real Prometheus; curl
// without credentials gets 401, a client certificate from another CA fails the handshake, a
// certificate replaced on disk is served without a restart; /containers shows only allowlisted
// labels and answers 404 when turned off.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../../src/server/web-config.js';
import { makePki, type TestPki } from '../unit/server/certs.js';
import {
  describeDocker,
  exec,
  portOutsideEphemeralRange,
  getDocker,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const USER = 'prometheus';
const PASSWORD = 'correct horse battery staple';

/** The CN of the certificate the agent serves right now. */
function servedCn(port: number, pki: TestPki): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(pki.caCert),
      cert: readFileSync(pki.clientCert),
      key: readFileSync(pki.clientKey),
    });
    s.once('secureConnect', () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.destroy();
    });
    s.once('error', reject);
  });
}

describeDocker('secured endpoint (issue 12)', () => {
  let pki: TestPki;
  let agent: AgentProcess;
  let certDir: string;
  let prom: ChildProcess | undefined;
  let promDir: string;
  let labelled: string;

  const curl = (args: string[]) =>
    exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', ...args]);
  const url = (p: string): string => `https://127.0.0.1:${agent.port}${p}`;
  const withClientCert = (): string[] => [
    '--cacert',
    pki.caCert,
    '--cert',
    pki.clientCert,
    '--key',
    pki.clientKey,
  ];

  beforeAll(async () => {
    pki = makePki();
    certDir = path.join(pki.dir, 'served');
    mkdirSync(certDir);
    copyFileSync(pki.serverCert, path.join(certDir, 'tls.crt'));
    copyFileSync(pki.serverKey, path.join(certDir, 'tls.key'));
    const webFile = path.join(pki.dir, 'web-config.yml');
    writeFileSync(
      webFile,
      [
        'tls_server_config:',
        '  cert_file: served/tls.crt', // relative to the web config file, as in exporter-toolkit
        '  key_file: served/tls.key',
        `  client_ca_file: ${pki.caCert}`,
        '  client_auth_type: RequireAndVerifyClientCert',
        '  min_version: TLS12',
        'http_server_config:',
        '  headers:',
        '    Strict-Transport-Security: max-age=31536000',
        'basic_auth_users:',
        `  ${USER}: '${await hashPassword(PASSWORD, 6)}'`,
      ].join('\n') + '\n',
    );
    labelled = uniqueName('hm-secret-labels');
    await runContainer([
      '-d',
      '--name',
      labelled,
      '--label',
      'com.docker.compose.service=web',
      '--label',
      'traefik.http.middlewares.auth.basicauth.users=admin:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/',
      '--label',
      'app.api-token=tok_live_hunter2',
      TEST_IMAGE,
      'sleep',
      '600',
    ]);
    agent = await startAgent({
      dockerHost: getDocker().host,
      args: ['--web-config-file', webFile, '--logs-enabled', 'false'],
    });
    await agent.waitForLog((r) => r.msg === 'Harbormaster started.', 30_000);
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => prom?.once('exit', r));
    }
    if (promDir) await rm(promDir, { recursive: true, force: true });
    await agent?.stop();
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  it('is scraped by a real Prometheus with its own tls_config and basic_auth: the target is up', async () => {
    promDir = await mkdtemp(path.join(os.tmpdir(), 'hm-prom-tls-'));
    const port = await portOutsideEphemeralRange();
    writeFileSync(
      path.join(promDir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s }',
        'scrape_configs:',
        '  - job_name: harbormaster',
        '    scheme: https',
        '    tls_config:',
        `      ca_file: ${pki.caCert}`,
        `      cert_file: ${pki.clientCert}`,
        `      key_file: ${pki.clientKey}`,
        '    basic_auth:',
        `      username: ${USER}`,
        `      password: '${PASSWORD}'`,
        `    static_configs: [{ targets: ['127.0.0.1:${agent.port}'] }]`,
      ].join('\n') + '\n',
    );
    let out = '';
    prom = spawn(
      '/usr/bin/prometheus',
      [
        `--config.file=${path.join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-5000)));
    const query = async (q: string) => {
      const res = await fetch(
        `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`,
      );
      const body = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
      return body.data?.result ?? [];
    };
    await waitFor(
      async () => (await query('up{job="harbormaster"} == 1')).length === 1,
      60_000,
      500,
      `Prometheus to scrape the agent over TLS (prometheus stderr: ${out.slice(-500)})`,
    );
    // real samples came through, not only `up`
    const built = await waitFor(
      async () => (await query('harbormaster_build_info')).length,
      20_000,
      500,
      'harbormaster_build_info in Prometheus',
    );
    expect(built).toBe(1);
  });

  it('answers 401 with WWW-Authenticate to curl without credentials; /healthz stays open for probes', async () => {
    const noAuth = await curl([...withClientCert(), '-D', '-', url('/metrics')]);
    expect(noAuth.stdout).toMatch(/401$/);
    const headers = await exec('curl', [
      '-sS',
      '-D',
      '-',
      '-o',
      '/dev/null',
      ...withClientCert(),
      url('/metrics'),
    ]);
    expect(headers.stdout).toMatch(/www-authenticate: Basic realm="harbormaster"/i);
    expect(headers.stdout).toMatch(/strict-transport-security: max-age=31536000/i);
    const wrong = await curl([...withClientCert(), '-u', `${USER}:nope`, url('/metrics')]);
    expect(wrong.stdout).toBe('401');
    const right = await curl([...withClientCert(), '-u', `${USER}:${PASSWORD}`, url('/metrics')]);
    expect(right.stdout).toBe('200');
    expect((await curl([...withClientCert(), url('/healthz')])).stdout).toBe('200');
    // counted, not logged per request
    const metrics = await exec('curl', [
      '-sS',
      ...withClientCert(),
      '-u',
      `${USER}:${PASSWORD}`,
      url('/metrics'),
    ]);
    expect(metrics.stdout).toMatch(
      /^harbormaster_http_auth_failures_total\{reason="missing"\} [1-9]/m,
    );
    expect(metrics.stdout).toMatch(
      /^harbormaster_http_auth_failures_total\{reason="invalid"\} [1-9]/m,
    );
    expect(agent.logs().filter((r) => /auth/i.test(String(r.msg)))).toEqual([]);
  });

  it('fails the handshake of a client certificate from another CA, and of no certificate', async () => {
    const stranger = await curl([
      '--cacert',
      pki.caCert,
      '--cert',
      pki.strangerCert,
      '--key',
      pki.strangerKey,
      '-u',
      `${USER}:${PASSWORD}`,
      url('/healthz'),
    ]);
    expect(stranger.stdout).toBe('000'); // no HTTP answer at all
    expect(stranger.code).not.toBe(0);
    const none = await curl(['--cacert', pki.caCert, '-u', `${USER}:${PASSWORD}`, url('/healthz')]);
    expect(none.stdout).toBe('000');
    const metrics = await exec('curl', [
      '-sS',
      ...withClientCert(),
      '-u',
      `${USER}:${PASSWORD}`,
      url('/metrics'),
    ]);
    const failures =
      /^harbormaster_http_tls_handshake_failures_total\{reason="(?:client_certificate|no_client_certificate)"\} (\d+)/gm;
    let total = 0;
    for (const m of metrics.stdout.matchAll(failures)) total += Number(m[1]);
    expect(total).toBeGreaterThanOrEqual(2);
  });

  it('serves a certificate replaced on disk without a restart', async () => {
    expect(await servedCn(agent.port, pki)).toBe('server-one');
    const [cert, key] = pki.issueServer('rotated', 'server-rotated');
    copyFileSync(cert, path.join(certDir, 'tls.crt.tmp'));
    copyFileSync(key, path.join(certDir, 'tls.key.tmp'));
    renameSync(path.join(certDir, 'tls.key.tmp'), path.join(certDir, 'tls.key'));
    renameSync(path.join(certDir, 'tls.crt.tmp'), path.join(certDir, 'tls.crt'));
    await waitFor(
      async () => (await servedCn(agent.port, pki)) === 'server-rotated',
      10_000,
      200,
      'the rotated certificate',
    );
    const pid = agent.pid;
    expect(agent.exit).toBeUndefined();
    expect(agent.pid).toBe(pid);
    // and Prometheus keeps scraping through the new certificate
    const ok = await curl([...withClientCert(), '-u', `${USER}:${PASSWORD}`, url('/metrics')]);
    expect(ok.stdout).toBe('200');
  });

  it('/containers shows no label outside the allowlist', async () => {
    const r = await exec('curl', [
      '-sS',
      ...withClientCert(),
      '-u',
      `${USER}:${PASSWORD}`,
      url('/containers'),
    ]);
    const list = JSON.parse(r.stdout) as Array<{ name: string; labels: Record<string, string> }>;
    const mine = list.find((c) => c.name === labelled);
    expect(mine?.labels).toEqual({ 'com.docker.compose.service': 'web' });
    expect(r.stdout).not.toContain('hunter2');
    expect(r.stdout).not.toContain('apr1');
  });

  it('/containers answers 404 when turned off', async () => {
    const plain = await startAgent({
      dockerHost: getDocker().host,
      args: ['--http-containers-endpoint', 'false', '--logs-enabled', 'false'],
    });
    try {
      const r = await plain.get('/containers');
      expect(r.status).toBe(404);
      expect((await plain.get('/metrics')).status).toBe(200);
    } finally {
      await plain.stop();
    }
  });
});
