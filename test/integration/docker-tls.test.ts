// DOCKER_HOST=tcp:// with TLS from DOCKER_CERT_PATH / DOCKER_TLS_VERIFY against a real dockerd.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  TEST_IMAGE,
  describeDocker,
  startAgent,
  startOwnDockerd,
  waitFor,
} from './harness/index.js';

const dir = mkdtempSync(join(tmpdir(), 'hm-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as `dockerd --tlsverify` wants. */
function makeCerts(): { server: string; client: string } {
  const server = join(dir, 'server');
  const client = join(dir, 'client');
  execFileSync('mkdir', ['-p', server, client]);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=hm-test-ca',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem',
  ]);
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [who, ext] of [
    ['server', 'server.ext'],
    ['client', 'client.ext'],
  ] as const) {
    openssl([
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
    openssl([
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
    execFileSync('cp', [join(dir, 'ca.pem'), join(dir, who, 'ca.pem')]);
  }
  return { server, client };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describeDocker('Docker over tcp:// with TLS', () => {
  it('connects with the client certificate from DOCKER_CERT_PATH and lists containers', async () => {
    const { server, client } = makeCerts();
    const port = await freePort();
    const d = await startOwnDockerd({
      extraArgs: [
        '--tlsverify',
        '--tlscacert',
        join(server, 'ca.pem'),
        '--tlscert',
        join(server, 'cert.pem'),
        '--tlskey',
        join(server, 'key.pem'),
        '-H',
        `tcp://127.0.0.1:${port}`,
      ],
    });
    const id = (
      await d.dockerOk(['create', '--network', 'none', '--name', 'over-tls', TEST_IMAGE, 'true'])
    ).trim();
    const agent = await startAgent({
      dockerHost: `tcp://127.0.0.1:${port}`,
      env: { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: client },
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
    expect(listed).toContainEqual(expect.objectContaining({ id, name: 'over-tls' }));
    await agent.stop();

    // without a client certificate the daemon refuses; the agent says so and stays up
    const bare = await startAgent({
      dockerHost: `tcp://127.0.0.1:${port}`,
      env: { DOCKER_CERT_PATH: '' },
    });
    const err = await bare.waitForLog((l) => l.level === 50, 15_000);
    expect(String(err.msg)).toContain(`tcp://127.0.0.1:${port}`);
    expect((await bare.get('/readyz')).status).toBe(503);
    expect(bare.exit).toBeUndefined();
    await bare.stop();
  });
});
