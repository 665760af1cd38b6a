// Issue 8, acceptance 6: `harbormaster doctor` reports a fail with a fix for: no daemon, an
// unreadable socket, an unreadable log directory, an unwritable state directory and an
// unreachable OTLP endpoint; and everything ok against the private dockerd.
// Root bypasses file permissions, so the permission cases run doctor as uid/gid 65534.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  refusedPort,
  runContainer,
  TEST_IMAGE,
  uniqueName,
} from './harness/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}
interface Report {
  checks: Check[];
  summary: Record<string, number>;
  exitCode: number;
}

const NOBODY = 65534;

function doctor(
  args: string[],
  opts: { env?: Record<string, string>; asNobody?: boolean } = {},
): Promise<{ code: number; report: Report; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    for (const k of Object.keys(env))
      if (k.startsWith('OTEL_') || (k.startsWith('HARBORMASTER_') && !(k in (opts.env ?? {}))))
        delete env[k];
    const child = spawn(
      process.execPath,
      [harness().agentCli, 'doctor', '--output', 'json', ...args],
      {
        env,
        cwd: '/',
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(opts.asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code: code ?? -1, report: JSON.parse(out) as Report, stderr: err });
      } catch {
        reject(new Error(`doctor printed no JSON (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

function check(r: Report, id: string): Check {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${JSON.stringify(r)}`);
  return c;
}

describeDocker('harbormaster doctor', () => {
  let tmp: string;
  let rx: OtlpReceiver;
  let dataRoot: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hm-doctor-'));
    await chmod(tmp, 0o755); // uid 65534 must reach the directories below
    rx = await startOtlpReceiver();
    const info = harness().docker;
    dataRoot = info.available && info.dataRoot ? info.dataRoot : '/var/lib/docker';
    await runContainer(
      ['-d', '--name', uniqueName('hm-doctor'), TEST_IMAGE, 'sh', '-c', 'echo hi; sleep 3600'],
      {},
    );
  });
  afterAll(async () => {
    await rx?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Flags for a setup where everything is fine. */
  async function goodArgs(): Promise<string[]> {
    const state = path.join(tmp, uniqueName('state'));
    await mkdir(state);
    return [
      '--docker-root',
      dataRoot,
      '--state-dir',
      state,
      '--otlp-endpoint',
      rx.url,
      '--listen',
      // port 0: the check binds it like the agent would (any free port)
      '127.0.0.1:0',
    ];
  }

  it('reports every check ok against the private dockerd (exit 0)', async () => {
    const { code, report } = await doctor(await goodArgs(), {
      env: { DOCKER_HOST: getDocker().host },
    });
    expect(report.checks.map((c) => c.id)).toEqual([
      'daemon',
      'socket',
      'cgroup',
      'proc',
      'logs',
      'state',
      'otlp',
      'listen',
    ]);
    expect(report.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(check(report, 'daemon').detail).toMatch(/API 1\.\d+/);
    expect(check(report, 'cgroup').detail).toMatch(/read \d counter files of container/);
    expect(check(report, 'proc').detail).toMatch(/net\/dev \(container /);
    expect(check(report, 'logs').detail).toMatch(/-json\.log readable/);
    expect(code).toBe(0);
  });

  it('fails with a fix when no daemon answers', async () => {
    const { code, report } = await doctor(await goodArgs(), {
      env: { DOCKER_HOST: `unix://${path.join(tmp, 'no-daemon.sock')}` },
    });
    const c = check(report, 'daemon');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('does not exist');
    expect(c.fix).toMatch(/Start dockerd/);
    expect(code).toBe(3);
  });

  it('fails with a fix when the socket is not readable by the agent user', async () => {
    const host = getDocker().host;
    const sock = host.replace(/^unix:\/\//, '');
    // the private dockerd's directory is 0700: let uid 65534 reach the (root-only) socket itself
    const dir = path.dirname(sock);
    const before = (await stat(dir)).mode & 0o7777;
    await chmod(dir, before | 0o011);
    let result;
    try {
      result = await doctor(await goodArgs(), { env: { DOCKER_HOST: host }, asNobody: true });
    } finally {
      await chmod(dir, before);
    }
    const { code, report } = result;
    expect(check(report, 'daemon').status).toBe('fail');
    const c = check(report, 'socket');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('not readable and writable by this process (uid 65534');
    expect(c.fix).toMatch(/--group-add \d+/);
    expect(code).toBe(3);
  });

  it('fails with a fix when the log directory is unreadable', async () => {
    const root = path.join(tmp, uniqueName('docker-root'));
    await mkdir(path.join(root, 'containers'), { recursive: true });
    await chmod(path.join(root, 'containers'), 0o000);
    const args = await goodArgs();
    args[1] = root;
    const { code, report } = await doctor(args, {
      env: { DOCKER_HOST: getDocker().host },
      asNobody: true,
    });
    const c = check(report, 'logs');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain(`cannot list ${root}/containers`);
    expect(c.detail).toContain('EACCES');
    expect(c.fix).toMatch(/run the agent as root/);
    expect(code).toBe(3);
  });

  it('fails with a fix when the state directory is not writable', async () => {
    const state = path.join(tmp, uniqueName('ro-state'));
    await mkdir(state, { mode: 0o755 }); // owned by root: uid 65534 cannot write
    const args = await goodArgs();
    args[3] = state;
    const { code, report } = await doctor(args, {
      env: { DOCKER_HOST: getDocker().host },
      asNobody: true,
    });
    const c = check(report, 'state');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain(`cannot create a file in ${state}`);
    expect(c.fix).toMatch(/HARBORMASTER_STATE_DIR/);
    expect(code).toBe(3);
  });

  it('fails with a fix when the OTLP endpoint is unreachable', async () => {
    const closed = await refusedPort();
    const args = await goodArgs();
    args[5] = `http://127.0.0.1:${closed}`;
    const { code, report } = await doctor(args, { env: { DOCKER_HOST: getDocker().host } });
    const c = check(report, 'otlp');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain(`127.0.0.1:${closed}`);
    expect(c.detail).toContain('ECONNREFUSED');
    expect(c.fix).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(report.checks.filter((x) => x.status === 'fail').map((x) => x.id)).toEqual(['otlp']);
    expect(code).toBe(3);
  });
});
