// The reconnect wait ends as soon as the Docker socket comes back (real inotify, real sockets).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffWait } from '../../../src/docker/socket-wait.js';
import { tempDir } from '../../support/tmp.js';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listenOn(path: string): Promise<void> {
  const s = net.createServer();
  servers.push(s);
  await new Promise<void>((r) => s.listen(path, r));
}

/** Runs `act` once the wait is set up; returns how the wait ended and after how long. */
async function timed(wait: Promise<string>, act: () => Promise<void> | void) {
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 50));
  await act();
  const how = await wait;
  return { how, ms: performance.now() - t0 };
}

describe('backoffWait', () => {
  it('ends at once when the daemon binds its socket again, long before the timer', async () => {
    const sock = join(tempDir('hm-sw'), 'docker.sock');
    const r = await timed(backoffWait(20_000, sock, new AbortController().signal), () =>
      listenOn(sock),
    );
    expect(r.how).toBe('socket');
    expect(r.ms).toBeLessThan(5_000);
  });

  it('ends when a link to a live socket is put back (the path followed, as the client does)', async () => {
    const dir = tempDir('hm-sw');
    const real = join(dir, 'real.sock');
    await listenOn(real);
    mkdirSync(join(dir, 'links'));
    const link = join(dir, 'links', 'docker.sock');
    const r = await timed(backoffWait(20_000, link, new AbortController().signal), () =>
      symlinkSync(real, link),
    );
    expect(r.how).toBe('socket');
    expect(r.ms).toBeLessThan(5_000);
  });

  it('is not woken by other files, a regular file at the path, or a link to nothing', async () => {
    const dir = tempDir('hm-sw');
    const sock = join(dir, 'docker.sock');
    const r = await timed(backoffWait(600, sock, new AbortController().signal), async () => {
      await listenOn(join(dir, 'other.sock'));
      writeFileSync(join(dir, 'notes'), 'x');
      symlinkSync(join(dir, 'missing.sock'), sock);
    });
    expect(r.how).toBe('timeout');
    expect(r.ms).toBeGreaterThanOrEqual(590);
  });

  it('after an attempt that found no socket, one that came before the watch ends the wait', async () => {
    const sock = join(tempDir('hm-sw'), 'docker.sock');
    await listenOn(sock); // bound between the failed attempt and the wait
    const c = new AbortController();
    const t0 = performance.now();
    expect(await backoffWait(20_000, sock, c.signal, undefined, true)).toBe('socket');
    expect(performance.now() - t0).toBeLessThan(5_000);
    // a socket that was there at the last attempt (refusing, or stale) waits for the timer
    expect(await backoffWait(300, sock, c.signal, undefined, false)).toBe('timeout');
  });

  it('falls back to the timer, and says why, when the directory cannot be watched', async () => {
    const errors: string[] = [];
    const sock = join(tempDir('hm-sw'), 'gone', 'docker.sock');
    const how = await backoffWait(100, sock, new AbortController().signal, (e) =>
      errors.push(e.message),
    );
    expect(how).toBe('timeout');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/ENOENT/);
  });

  it('ends on abort, and a plain timer without a socket path (tcp:// daemons)', async () => {
    const c = new AbortController();
    const sock = join(tempDir('hm-sw'), 'docker.sock');
    const r = await timed(backoffWait(20_000, sock, c.signal), () => c.abort());
    expect(r.how).toBe('aborted');
    expect(r.ms).toBeLessThan(5_000);
    expect(await backoffWait(20, undefined, new AbortController().signal)).toBe('timeout');
  });
});
