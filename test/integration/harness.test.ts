// Smoke test of the integration-test harness itself.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENV,
  describeDocker,
  destroyOwnDockerd,
  getDocker,
  harness,
  pingDocker,
  runContainer,
  startAgent,
  startOwnDockerd,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type PrivateDockerd,
} from './harness/index.js';

describeDocker('shared engine', () => {
  it('provides the engine to tests and to child processes', () => {
    const info = harness().docker;
    expect(info.available).toBe(true);
    if (!info.available) return;
    expect(process.env[ENV.dockerHost]).toBe(info.host);
    expect(info.host).toMatch(/^(unix|tcp):\/\//);
  });

  it('gives this file an engine of its own, with a cgroup parent of its own', async () => {
    const info = harness();
    const d = getDocker();
    // Nothing of another file: this is the file's first container (the test above made none).
    expect((await d.dockerOk(['ps', '-aq'])).trim()).toBe('');
    // Its containers' cgroups are under this daemon's own parent, not the shared /docker.
    const r = await runContainer(['--rm', TEST_IMAGE, 'cat', '/proc/self/cgroup']);
    const paths = r.stdout
      .split('\n')
      .filter((l) => /^\d+:(memory|cpuacct|):/.test(l) || l.startsWith('0::'))
      .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1));
    expect(paths.length).toBeGreaterThan(0);
    if (info.perFileEngine) {
      // (an engine from HARBORMASTER_TEST_DOCKER_HOST has the parent its owner gave it)
      for (const p of paths) expect(p).toMatch(/^\/hm-[a-z0-9]+-[0-9a-f]{4}\/[0-9a-f]{64}$/);
    }
  });

  it('runs `echo hello` in the test image with --network none', async () => {
    const name = uniqueName('echo');
    const r = await runContainer(['--name', name, TEST_IMAGE, 'echo', 'hello']);
    expect(r.stdout).toBe('hello\n');
    const d = getDocker();
    const mode = await d.dockerOk(['inspect', '--format', '{{.HostConfig.NetworkMode}}', name]);
    expect(mode.trim()).toBe('none');
    const labels = await d.dockerOk(['inspect', '--format', '{{json .Config.Labels}}', name]);
    expect(JSON.parse(labels)).toEqual({ 'harbormaster.test': '1' });
  });

  it('has the busybox applets the tests rely on', async () => {
    const r = await runContainer([
      '--rm',
      TEST_IMAGE,
      'sh',
      '-c',
      'for a in sh sleep echo cat dd yes head seq kill true false printf; do [ -x /bin/$a ] || echo missing $a; done; ' +
        'seq 3 | head -n 2; [ -d /tmp ] && grep -c ^root: /etc/passwd',
    ]);
    expect(r.stdout).toBe('1\n2\n1\n');
  });
});

describeDocker('private dockerds', () => {
  let a: PrivateDockerd;
  let b: PrivateDockerd;
  // Outside CI, skip when this machine cannot run a private dockerd (e.g. an external engine as non-root).
  if (!harness().canStartPrivateDockerd && !process.env.CI) {
    it.skip('needs root and dockerd', () => undefined);
    return;
  }

  beforeAll(async () => {
    const t0 = Date.now();
    [a, b] = await Promise.all([startOwnDockerd(), startOwnDockerd()]);
    console.log(`two private dockerds (${a.storageDriver}) + image in ${Date.now() - t0} ms`);
  });

  it('run side by side without clashing', async () => {
    expect(a.socketPath).not.toBe(b.socketPath);
    expect(a.host).not.toBe(process.env[ENV.dockerHost]);
    const na = uniqueName('a');
    const nb = uniqueName('b');
    await runContainer(['-d', '--name', na, '--stop-timeout', '1', TEST_IMAGE, 'sleep', '300'], {
      docker: a,
    });
    await runContainer(['-d', '--name', nb, '--stop-timeout', '1', TEST_IMAGE, 'sleep', '300'], {
      docker: b,
    });
    const psA = await a.dockerOk(['ps', '--format', '{{.Names}}']);
    const psB = await b.dockerOk(['ps', '--format', '{{.Names}}']);
    expect(psA.trim().split('\n')).toEqual([na]);
    expect(psB.trim().split('\n')).toEqual([nb]);

    const t0 = Date.now();
    await destroyOwnDockerd(b);
    console.log(`destroy of a dockerd with one running container: ${Date.now() - t0} ms`);
    expect(await pingDocker(b.host)).toBe(false);
    expect(await pingDocker(a.host)).toBe(true);
    const still = await a.dockerOk(['inspect', '--format', '{{.State.Running}}', na]);
    expect(still.trim()).toBe('true');
  });

  it('keeps containers across stop()/start()', async () => {
    const keep = uniqueName('keep');
    const always = uniqueName('always');
    const idKeep = (
      await runContainer(
        ['-d', '--name', keep, '--stop-timeout', '1', TEST_IMAGE, 'sleep', '300'],
        {
          docker: a,
        },
      )
    ).stdout.trim();
    await runContainer(
      [
        '-d',
        '--name',
        always,
        '--restart',
        'always',
        '--stop-timeout',
        '1',
        TEST_IMAGE,
        'sleep',
        '300',
      ],
      { docker: a },
    );
    const oldPid = a.pid;
    let t0 = Date.now();
    await a.stop();
    const stopMs = Date.now() - t0;
    expect(a.running).toBe(false);
    expect(await pingDocker(a.host)).toBe(false);
    t0 = Date.now();
    await a.start();
    console.log(`daemon stop ${stopMs} ms, start ${Date.now() - t0} ms`);
    expect(a.pid).not.toBe(oldPid);
    const ids = await a.dockerOk(['ps', '-aq', '--no-trunc', '--filter', `name=^${keep}$`]);
    expect(ids.trim()).toBe(idKeep);
    const running = await waitFor(
      async () =>
        (await a.dockerOk(['inspect', '--format', '{{.State.Running}}', always])).trim() === 'true',
      20_000,
      200,
      'the restart=always container to run again',
    );
    expect(running).toBe(true);
    expect(await a.dockerOk(['images', '-q', TEST_IMAGE])).not.toBe('');
  });
});

describe('startAgent (against a stand-in script)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hm-fake-agent-'));
    // Mimics the agent's contract: pino JSON lines on stderr, the "HTTP server listening" line.
    await writeFile(
      path.join(dir, 'good.mjs'),
      `import http from 'node:http';
const log = (o) => process.stderr.write(JSON.stringify({ level: 30, time: Date.now(), ...o }) + '\\n');
const args = process.argv.slice(2);
log({ msg: 'starting', args, dockerHost: process.env.DOCKER_HOST, extra: process.env.EXTRA });
process.stderr.write('not json\\n');
const srv = http.createServer((req, res) => { res.setHeader('x-fake', '1'); res.end('path ' + req.url); });
srv.listen(0, '127.0.0.1', () => log({ msg: 'HTTP server listening', address: '127.0.0.1:' + srv.address().port }));
process.on('SIGTERM', () => { log({ msg: 'bye' }); srv.close(() => process.exit(0)); });
`,
    );
    await writeFile(
      path.join(dir, 'bad.mjs'),
      `process.stderr.write(JSON.stringify({ level: 60, msg: 'config invalid' }) + '\\n'); process.exit(3);\n`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves on the listening line and exposes logs, get, stop', async () => {
    const agent = await startAgent({
      dockerHost: 'unix:///nonexistent.sock',
      cliPath: path.join(dir, 'good.mjs'),
      args: ['--foo'],
      env: { EXTRA: 'x' },
    });
    expect(agent.url).toBe(`http://127.0.0.1:${agent.port}`);
    const first = agent.logs()[0];
    expect(first).toMatchObject({
      msg: 'starting',
      dockerHost: 'unix:///nonexistent.sock',
      extra: 'x',
    });
    const args = first?.args as string[];
    expect(args.slice(0, 4)).toEqual(['run', '--listen', '127.0.0.1:0', '--state-dir']);
    expect(args.at(-1)).toBe('--foo');
    expect(agent.logs()).toContainEqual({ raw: 'not json' });
    const r = await agent.get('/metrics');
    expect(r).toMatchObject({ status: 200, text: 'path /metrics' });
    expect(r.headers.get('x-fake')).toBe('1');
    const exit = await agent.stop();
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(agent.logs().some((l) => l.msg === 'bye')).toBe(true);
  });

  it('rejects with the exit code and stderr tail when the agent dies at startup', async () => {
    await expect(
      startAgent({ dockerHost: 'unix:///nonexistent.sock', cliPath: path.join(dir, 'bad.mjs') }),
    ).rejects.toThrow(/exit code 3[\s\S]*config invalid/);
  });

  it('waitFor polls until truthy and reports timeouts', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : undefined), 2000, 10)).resolves.toBe(3);
    await expect(
      waitFor(
        () => {
          throw new Error('nope');
        },
        100,
        10,
        'x',
      ),
    ).rejects.toThrow(/waiting for x \(last error: nope\)/);
  });
});
