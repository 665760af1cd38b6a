// DOCKER_HOST=tcp:// with TLS from DOCKER_CERT_PATH / DOCKER_TLS_VERIFY against a real dockerd.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  TEST_IMAGE,
  describeDocker,
  listeningPorts,
  startAgent,
  startOwnDockerd,
  waitFor,
} from './harness/index.js';

const dir = mkdtempSync(join(tmpdir(), 'hm-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/**
 * A CA, a server certificate for 127.0.0.1 and a client certificate under `dir/<name>`, as
 * `dockerd --tlsverify` wants: server/{ca,cert,key}.pem and client/{ca,cert,key}.pem.
 */
function makeCerts(name: string): { ca: string; server: string; client: string } {
  const base = join(dir, name);
  const server = join(base, 'server');
  const client = join(base, 'client');
  mkdirSync(server, { recursive: true });
  mkdirSync(client, { recursive: true });
  const ssl = (args: string[]): void => openssl(args, base);
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=hm-test-ca-${name}`,
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem',
  ]);
  writeFileSync(
    join(base, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  writeFileSync(join(base, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [who, ext] of [
    ['server', 'server.ext'],
    ['client', 'client.ext'],
  ] as const) {
    ssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who}`,
      '-keyout',
      `${who}/key.pem`,
      '-out',
      `${who}.csr`,
    ]);
    ssl([
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      `${who}/cert.pem`,
    ]);
    copyFileSync(join(base, 'ca.pem'), join(base, who, 'ca.pem'));
  }
  return { ca: join(base, 'ca.pem'), server, client };
}

/** A DOCKER_CERT_PATH directory made of the given files (name -> source path). */
function certDir(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [f, src] of Object.entries(files)) copyFileSync(src, join(d, f));
  return d;
}

describeDocker('Docker over tcp:// with TLS', () => {
  let certs: { ca: string; server: string; client: string };
  let host: string;

  beforeAll(async () => {
    certs = makeCerts('good');
    const d = await startOwnDockerd({
      extraArgs: [
        '--tlsverify',
        '--tlscacert',
        join(certs.server, 'ca.pem'),
        '--tlscert',
        join(certs.server, 'cert.pem'),
        '--tlskey',
        join(certs.server, 'key.pem'),
        '-H',
        'tcp://127.0.0.1:0', // the kernel picks the port; read back below
      ],
    });
    const ports = await waitFor(
      async () => {
        const p = await listeningPorts(d.pid);
        return p.length === 1 ? p : undefined;
      },
      15_000,
      100,
      'dockerd to listen on one TCP port',
    );
    host = `tcp://127.0.0.1:${ports[0]}`;
    await d.dockerOk(['create', '--network', 'none', '--name', 'over-tls', TEST_IMAGE, 'true']);
  });

  /** Starts an agent with the given TLS environment and waits for its first error line. */
  async function refused(env: Record<string, string>): Promise<void> {
    const agent = await startAgent({ dockerHost: host, env });
    const err = await agent.waitForLog((l) => l.level === 50, 15_000);
    expect(String(err.msg)).toContain(host.replace('tcp://', ''));
    expect((await agent.get('/readyz')).status).toBe(503);
    expect((await agent.get('/metrics')).text).toMatch(/^harbormaster_docker_up 0$/m);
    expect(agent.exit).toBeUndefined();
    await agent.stop();
  }

  it('connects with the client certificate from DOCKER_CERT_PATH and lists containers', async () => {
    const agent = await startAgent({
      dockerHost: host,
      env: { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs.client },
    });
    await waitFor(
      async () => (await agent.get('/readyz')).status === 200,
      15_000,
      100,
      'ready over TLS',
    );
    const listed = JSON.parse((await agent.get('/containers')).text) as {
      id: string;
      name: string;
    }[];
    expect(listed.map((c) => c.name)).toContain('over-tls');
    await agent.stop();
  });

  it('refuses a daemon whose certificate another CA signed (server verification is on)', async () => {
    // A valid client certificate, but the CA the agent trusts is not the daemon's: the agent must
    // reject the daemon's certificate. With verification off it would connect and become ready.
    const other = makeCerts('other');
    await refused({
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certDir('wrong-ca', {
        'ca.pem': other.ca,
        'cert.pem': join(certs.client, 'cert.pem'),
        'key.pem': join(certs.client, 'key.pem'),
      }),
    });
  });

  it('is refused by the daemon without a client certificate (TLS, right CA, no cert.pem)', async () => {
    // TLS to the right daemon with the right CA but no client certificate: dockerd --tlsverify
    // ends the handshake. (Not plain HTTP against the TLS port.)
    await refused({ DOCKER_CERT_PATH: certDir('no-client-cert', { 'ca.pem': certs.ca }) });
  });
});
