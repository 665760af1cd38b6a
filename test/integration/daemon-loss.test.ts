// Foundation acceptance 2, 3 and 4: losing the daemon is normal; errors name their cause.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  TEST_IMAGE,
  describeDocker,
  dockerCliEnv,
  harness,
  refusedPort,
  startAgent,
  startOwnDockerd,
  waitFor,
  type AgentProcess,
  type PrivateDockerd,
} from './harness/index.js';

interface ListedContainer {
  id: string;
  name: string;
  state: string;
}

async function inventoryOf(agent: AgentProcess): Promise<string[]> {
  const r = await agent.get('/containers');
  return (JSON.parse(r.text) as ListedContainer[])
    .map((c) => `${c.id} ${c.name} ${c.state}`)
    .sort();
}

async function dockerPsA(d: PrivateDockerd): Promise<string[]> {
  const out = await d.dockerOk([
    'ps',
    '-a',
    '--no-trunc',
    '--format',
    '{{.ID}} {{.Names}} {{.State}}',
  ]);
  return out.split('\n').filter(Boolean).sort();
}

/** Polls /readyz in the background and records every change of status. */
function watchReadiness(agent: AgentProcess) {
  const seen: number[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      try {
        const r = await agent.get('/readyz');
        if (seen.at(-1) !== r.status) seen.push(r.status);
      } catch {
        /* agent busy */
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  return {
    seen,
    async end() {
      stop = true;
      await loop;
      // the state at the end, even when it changed after the loop's last look (the caller
      // waited for it, so the loop may have been asleep when it flipped)
      const r = await agent.get('/readyz');
      if (seen.at(-1) !== r.status) seen.push(r.status);
    },
  };
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describeDocker('daemon loss', () => {
  it('re-lists after the daemon returns: inventory equals docker ps -a within 10 s of its socket coming back, whatever the backoff, readiness dips', async () => {
    const d = await startOwnDockerd();
    // The agent reaches the daemon through a link we can cut: while the link is gone the daemon
    // runs "behind the agent's back" (it cannot see any of those events, just as after a restart).
    const linkDir = mkdtempSync(join(tmpdir(), 'hm-link-'));
    tmpDirs.push(linkDir);
    const link = join(linkDir, 'docker.sock');
    symlinkSync(d.socketPath, link);
    const known: string[] = [];
    for (let i = 0; i < 5; i++) {
      known.push(
        (
          await d.dockerOk([
            'create',
            '--network',
            'none',
            '--name',
            `known-${i}`,
            TEST_IMAGE,
            'true',
          ])
        ).trim(),
      );
    }
    // A backoff cap far above the outage: the agent must notice the socket coming back, not
    // reach it by its timer (which would be up to the cap, here 120 s, later).
    const agent = await startAgent({
      dockerHost: `unix://${link}`,
      env: { HARBORMASTER_DOCKER_RECONNECT_MAX_BACKOFF_SECONDS: '120' },
    });
    await waitFor(async () => (await agent.get('/readyz')).status === 200, 15_000, 100, 'ready');
    expect(await inventoryOf(agent)).toEqual(await dockerPsA(d));
    const ready = watchReadiness(agent);

    const downAt = Date.now();
    await d.stop();
    unlinkSync(link);
    await d.start();
    // behind the agent's back: remove what it knew, create and churn new ones (> 300 events)
    await d.dockerOk(['rm', '-f', ...known]);
    const script = [
      'set -e',
      'for i in $(seq 1 10); do',
      `  docker run --network none --name ran-$i ${TEST_IMAGE} true`,
      'done',
      'for i in $(seq 1 170); do',
      `  docker create --network none --name churn-$i --label n=$i ${TEST_IMAGE} true >/dev/null`,
      'done',
      'docker ps -aq --filter name=churn- | head -150 | xargs docker rm >/dev/null',
    ].join('\n');
    // count what the daemon emits live (its replay buffer holds only 256 events)
    const watcher = spawn(
      'docker',
      ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'],
      { env: dockerCliEnv(d.host), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let watched = '';
    let watcherErr = '';
    let watcherExit: number | null | undefined;
    watcher.stdout.on('data', (c: Buffer) => (watched += c.toString()));
    watcher.stderr.on('data', (c: Buffer) => (watcherErr += c.toString()));
    watcher.on('exit', (code) => (watcherExit = code));
    // attached once it reports an event we cause (instead of guessing how long that takes). The
    // daemon does not replay events to a new subscriber: a marker created before the watcher's
    // subscription exists is never seen, so a new marker goes out every second until one is.
    const markers: string[] = [];
    await waitFor(
      async () => {
        if (watcherExit !== undefined)
          throw new Error(`docker events exited with ${watcherExit}: ${watcherErr.trim()}`);
        if (markers.some((m) => watched.includes(`container create ${m}\n`))) return true;
        const m = `attach-${process.pid}-${markers.length}`;
        await d.dockerOk(['create', '--network', 'none', '--name', m, TEST_IMAGE, 'true']);
        markers.push(m);
        return false;
      },
      30_000,
      1_000,
      'docker events to attach',
    );
    await d.dockerOk(['rm', '-f', ...markers]);
    await waitFor(
      () => markers.every((m) => watched.includes(`container destroy ${m}\n`)),
      15_000,
      20,
      'markers gone',
    );
    watched = '';
    const churn = spawn('sh', ['-c', script], {
      env: { ...process.env, DOCKER_HOST: d.host },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let churnErr = '';
    churn.stderr.on('data', (c: Buffer) => (churnErr += c.toString()));
    const code = await new Promise<number | null>((res) => churn.on('exit', res));
    expect(code, churnErr).toBe(0);
    // the watcher has seen the churn's last event: the 150th destroy
    await waitFor(
      () => (watched.match(/^container destroy churn-/gm)?.length ?? 0) >= 150,
      15_000,
      20,
      'the watcher to see the last removals',
    );
    watcher.kill('SIGTERM');
    await new Promise((res) => watcher.on('exit', res));
    const eventCount = watched.split('\n').filter(Boolean).length;
    expect(eventCount, "events behind the agent's back").toBeGreaterThan(300);
    const elapsed = Date.now() - downAt;
    if (elapsed < 10_000) await new Promise((res) => setTimeout(res, 10_000 - elapsed));

    symlinkSync(d.socketPath, link);
    const back = Date.now();
    const expected = await dockerPsA(d);
    let seen: string[] = [];
    await waitFor(
      async () => JSON.stringify((seen = await inventoryOf(agent))) === JSON.stringify(expected),
      10_000,
      100,
      'inventory equal to docker ps -a',
    ).catch((e: unknown) => {
      // say how they differ (id name state), so a failure can be told apart from a slow re-list
      const extra = seen.filter((x) => !expected.includes(x));
      const missing = expected.filter((x) => !seen.includes(x));
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}: the agent lists ${seen.length}, docker ` +
          `ps -a ${expected.length}; only the agent: ${JSON.stringify(extra.slice(0, 10))}; ` +
          `only docker: ${JSON.stringify(missing.slice(0, 10))}`,
      );
    });
    const tookMs = Date.now() - back;
    expect(
      agent.logs().some((r) => r.msg === 'The Docker socket appeared again; reconnecting now.'),
    ).toBe(true);
    await waitFor(
      async () => (await agent.get('/readyz')).status === 200,
      10_000,
      50,
      'ready again',
    );
    await ready.end();
    expect(ready.seen).toEqual([200, 503, 200]);
    console.log(
      `inventory re-synced ${expected.length} containers ${tookMs} ms after the daemon returned`,
    );
    const metrics = (await agent.get('/metrics')).text;
    expect(metrics).toMatch(/^harbormaster_docker_reconnects_total [1-9]/m);
    expect(metrics).toMatch(/^harbormaster_docker_up 1$/m);
    const exit = await agent.stop();
    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(10_000);
  });

  it('exits with status 75, saying why, when its socket is a bind mount of one the daemon deleted (live restore); not while that daemon still listens', async () => {
    // What a container started with -v /var/run/docker.sock:/var/run/docker.sock sees when the
    // host's dockerd (live-restore: the container keeps running) stops and starts: dockerd deletes
    // its socket and binds a new one, and the mount keeps showing the deleted socket, with no
    // links, forever. A bind mount on the host is the same mount.
    const d = await startOwnDockerd();
    const dir = mkdtempSync(join(tmpdir(), 'hm-bind-'));
    tmpDirs.push(dir);
    const mounted = join(dir, 'docker.sock');
    writeFileSync(mounted, '');
    execFileSync('mount', ['--bind', d.socketPath, mounted]);
    try {
      const socketCheck = () => {
        const doc = spawnSync(
          process.execPath,
          [harness().agentCli, 'doctor', '--output', 'json'],
          { env: { ...process.env, DOCKER_HOST: `unix://${mounted}` }, encoding: 'utf8' },
        );
        const c = (
          JSON.parse(doc.stdout) as {
            checks: Array<{ id: string; status: string; detail: string; fix?: string }>;
          }
        ).checks.find((x) => x.id === 'socket');
        if (!c) throw new Error(`no socket check in ${doc.stdout}`);
        return c;
      };
      const agent = await startAgent({ dockerHost: `unix://${mounted}` });
      await waitFor(async () => (await agent.get('/readyz')).status === 200, 15_000, 100, 'ready');
      // Deleted on the host while dockerd still listens: no links left, but it answers, so it
      // is not stale (yet): doctor warns, the agent stays.
      unlinkSync(d.socketPath);
      const warned = socketCheck();
      expect(warned.status, warned.detail).toBe('warn');
      expect(warned.detail).toContain('its daemon still answers');
      expect((await agent.get('/readyz')).status).toBe(200);
      expect(agent.exit).toBeUndefined();
      // dockerd stops: nothing listens on it any more
      await d.stop();
      await waitFor(() => agent.exit !== undefined, 20_000, 50, 'the agent to exit');
      expect(agent.exit?.code, agent.stderr().slice(-2_000)).toBe(75);
      const why = agent.logs().find((r) => r.exitCode === 75 && r.level === 50);
      expect(String(why?.msg)).toContain(
        `The Docker socket ${mounted} is a mount of a socket the daemon deleted`,
      );
      expect(String(why?.msg)).toContain('Exiting with status 75.');
      // stopped in order, not killed: the drain and checkpoint flush ran
      expect(agent.logs().some((r) => r.msg === 'Stopped.')).toBe(true);
      // and `doctor` says what it is and what to do
      const failed = socketCheck();
      expect(failed.status, failed.detail).toBe('fail');
      expect(failed.detail).toContain('a mount of a socket the daemon deleted');
      expect(failed.fix).toContain('Restart the agent');
    } finally {
      execFileSync('umount', ['-l', mounted]);
    }
  });

  it('starts without a daemon: alive, not ready, one clear error, ready when the daemon appears', async () => {
    const d = await startOwnDockerd();
    await d.stop();
    const agent = await startAgent({ dockerHost: d.host });
    expect((await agent.get('/healthz')).status).toBe(200);
    expect((await agent.get('/readyz')).status).toBe(503);
    // several reconnect attempts, each a counted error (polled, not a fixed wait)
    await waitFor(
      async () => {
        const t = (await agent.get('/metrics')).text;
        let n = 0;
        for (const m of t.matchAll(/^harbormaster_docker_errors_total\{[^}]*\} (\d+)$/gm))
          n += Number(m[1]);
        return n >= 3;
      },
      15_000,
      100,
      'three failed connection attempts',
    );
    const errors = agent.logs().filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.msg)).toContain(d.socketPath);
    expect(String(errors[0]?.msg)).toMatch(/does not exist|refused/);
    expect((await agent.get('/metrics')).text).toMatch(/^harbormaster_docker_up 0$/m);
    await d.start();
    await waitFor(async () => (await agent.get('/readyz')).status === 200, 15_000, 100, 'ready');
    expect(agent.exit).toBeUndefined();
    await agent.stop();
  });

  it('names the socket and the missing permission when it may not open the socket', async () => {
    // a socket only root may use; the agent runs as nobody
    const dir = mkdtempSync(join(tmpdir(), 'hm-perm-'));
    tmpDirs.push(dir);
    chmodSync(dir, 0o755);
    const sock = join(dir, 'docker.sock');
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((res) => server.listen(sock, res));
    chmodSync(sock, 0o660);
    const stateDir = mkdtempSync(join(tmpdir(), 'hm-perm-state-'));
    tmpDirs.push(stateDir);
    chmodSync(stateDir, 0o777);
    const child = spawn(
      process.execPath,
      [harness().agentCli, 'run', '--listen', '127.0.0.1:0', '--state-dir', stateDir],
      {
        uid: 65534,
        gid: 65534,
        env: { ...process.env, DOCKER_HOST: `unix://${sock}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      await waitFor(() => /permission denied/.test(stderr), 10_000, 100, 'permission error');
      const line = stderr.split('\n').find((l) => l.includes('permission denied')) ?? '';
      expect(line).toContain(sock);
      expect(line).toMatch(/read and write permission/);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
      server.close();
    }
  });

  it('explains a tcp:// DOCKER_HOST with no listener and keeps running', async () => {
    const port = await refusedPort();
    const agent = await startAgent({ dockerHost: `tcp://127.0.0.1:${port}` });
    const err = await agent.waitForLog((l) => l.level === 50, 10_000);
    expect(String(err.msg)).toContain(`nothing accepts connections at tcp://127.0.0.1:${port}`);
    expect((await agent.get('/healthz')).status).toBe(200);
    expect((await agent.get('/readyz')).status).toBe(503);
    await new Promise((res) => setTimeout(res, 1_500));
    expect(agent.exit).toBeUndefined();
    expect((await agent.stop()).code).toBe(0);
  });
});
