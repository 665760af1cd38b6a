// API version negotiation against daemons that cannot run here (newer Engines): a minimal
// server on a unix socket answers /_ping like they do, and records what the client asks for.
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerClient, DockerError } from '../../../src/docker/client.js';
import { tempDir } from '../../support/tmp.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function fakeDaemon(apiVersion: string, minVersion: string) {
  const sock = join(tempDir('hm-neg'), 'd.sock');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/_ping') {
      res.writeHead(200, { 'API-Version': apiVersion });
      res.end('OK');
      return;
    }
    const m = /^\/v(\d+\.\d+)\//.exec(req.url ?? '');
    const [maj = 0, min = 0] = (m?.[1] ?? '0.0').split('.').map(Number);
    const [minMaj = 0, minMin = 0] = minVersion.split('.').map(Number);
    if (maj * 1000 + min < minMaj * 1000 + minMin) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          message: `client version ${m?.[1]} is too old. Minimum supported API version is ${minVersion}`,
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ServerVersion: 'fake' }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(sock, r));
  return { host: `unix://${sock}`, seen };
}

describe('API version negotiation', () => {
  it('uses the daemon version when it is older than the client (Engine 20.10)', async () => {
    const d = await fakeDaemon('1.41', '1.12');
    const c = new DockerClient({ host: d.host });
    await c.get('/info');
    expect(c.apiVersion).toBe('1.41');
    expect(d.seen).toEqual(['GET /_ping', 'GET /v1.41/info']);
    c.close();
  });

  it('caps at the client maximum for newer daemons that refuse old clients', async () => {
    const d = await fakeDaemon('1.53', '1.44');
    const c = new DockerClient({ host: d.host });
    await c.get('/info');
    expect(c.apiVersion).toBe('1.51');
    expect(d.seen.at(-1)).toBe('GET /v1.51/info');
    c.close();
  });

  it('reports the daemon message when a fixed version is refused', async () => {
    const d = await fakeDaemon('1.53', '1.44');
    const c = new DockerClient({ host: d.host, apiVersion: '1.41' });
    await expect(c.get('/info')).rejects.toThrow(/answered 400 .*too old.*1\.44/);
    await expect(c.get('/info')).rejects.toBeInstanceOf(DockerError);
    c.close();
  });

  it('only ever sends GET requests', async () => {
    const d = await fakeDaemon('1.45', '1.24');
    const c = new DockerClient({ host: d.host });
    await c.get('/containers/json', { all: '1' });
    await c.get('/info');
    expect(d.seen.every((s) => s.startsWith('GET '))).toBe(true);
    c.close();
  });
});
