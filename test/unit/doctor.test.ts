// Unit tests of `harbormaster doctor` without Docker: fixture trees for cgroup and /proc, a
// missing socket, an occupied port, and the report's text / JSON forms and exit status.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { diagnose, EXIT, renderReport, runDoctor, type DoctorReport } from '../../src/doctor.js';

describe('doctor', () => {
  let tmp: string;
  let busy: Server;
  let busyPort: number;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hm-doctor-unit-'));
    await mkdir(path.join(tmp, 'cgroup'), { recursive: true });
    await writeFile(path.join(tmp, 'cgroup', 'cgroup.controllers'), 'cpu memory io pids\n');
    await mkdir(path.join(tmp, 'proc', '1', 'net'), { recursive: true });
    await writeFile(
      path.join(tmp, 'proc', '1', 'net', 'dev'),
      'Inter-|   Receive                            |  Transmit\n face |bytes    packets\n    lo: 0 0\n',
    );
    await mkdir(path.join(tmp, 'docker', 'containers'), { recursive: true });
    await mkdir(path.join(tmp, 'state'));
    busy = createServer((s) => s.destroy());
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    busyPort = (busy.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => busy.close(r));
    await rm(tmp, { recursive: true, force: true });
  });

  const flags = (extra: Record<string, string> = {}): Record<string, string> => ({
    'docker-host': `unix://${path.join(tmp ?? '/nonexistent', 'missing.sock')}`,
    'cgroup-root': path.join(tmp, 'cgroup'),
    'proc-root': path.join(tmp, 'proc'),
    'docker-root': path.join(tmp, 'docker'),
    'state-dir': path.join(tmp, 'state'),
    listen: '127.0.0.1:0',
    ...extra,
  });

  it('runs the checks in order and maps the worst finding to the exit status', async () => {
    const { config } = loadConfig({ env: {}, flags: flags() });
    const report = await diagnose(config);
    expect(report.checks.map((c) => [c.id, c.status])).toEqual([
      ['daemon', 'fail'],
      ['socket', 'fail'],
      ['cgroup', 'warn'], // v2 fixture found, driver unknown without a daemon
      ['proc', 'ok'],
      ['logs', 'ok'],
      ['state', 'ok'],
      ['otlp', 'ok'],
      ['listen', 'ok'],
    ]);
    expect(report.checks[2]?.detail).toContain('cgroup v2');
    expect(report.checks[6]?.detail).toMatch(/not configured/);
    expect(report.summary).toEqual({ ok: 5, warn: 1, fail: 2 });
    expect(report.exitCode).toBe(EXIT.fail);
  });

  it('fails the cgroup and proc checks with a fix when the host paths are not mounted', async () => {
    const { config } = loadConfig({
      env: {},
      flags: flags({ 'cgroup-root': path.join(tmp, 'nothing'), 'proc-root': path.join(tmp, 'x') }),
    });
    const report = await diagnose(config);
    const cg = report.checks.find((c) => c.id === 'cgroup');
    expect(cg?.status).toBe('fail');
    expect(cg?.fix).toContain('-v /sys/fs/cgroup:');
    const proc = report.checks.find((c) => c.id === 'proc');
    expect(proc?.status).toBe('fail');
    expect(proc?.fix).toContain('-v /proc:');
  });

  it('fails the port check when the metrics address is taken', async () => {
    const { config } = loadConfig({ env: {}, flags: flags({ listen: `127.0.0.1:${busyPort}` }) });
    const listen = (await diagnose(config)).checks.find((c) => c.id === 'listen');
    expect(listen?.status).toBe('fail');
    expect(listen?.detail).toContain('EADDRINUSE');
    expect(listen?.fix).toContain('--listen');
  });

  it('renders one line per check with its fix, and a summary', () => {
    const report: DoctorReport = {
      checks: [
        { id: 'daemon', title: 'Docker daemon reachable', status: 'ok', detail: 'Docker 20.10' },
        {
          id: 'otlp',
          title: 'OTLP endpoint reachable',
          status: 'fail',
          detail: 'refused',
          fix: 'Start it.',
        },
      ],
      summary: { ok: 1, warn: 0, fail: 1 },
      exitCode: EXIT.fail,
    };
    expect(renderReport(report)).toBe(
      'ok    1. Docker daemon reachable: Docker 20.10\n' +
        'FAIL  2. OTLP endpoint reachable: refused\n' +
        '        fix: Start it.\n' +
        '\n1 ok, 0 warnings, 1 failure (exit 3)\n',
    );
  });

  it('prints JSON with --output json, and rejects other formats with the usage status', async () => {
    let out = '';
    let err = '';
    const code = await runDoctor({
      flags: { ...flags(), output: 'json' },
      env: {},
      write: (s) => (out += s),
      writeError: (s) => (err += s),
    });
    // the fixture has no daemon socket: two failures, so the exit status is "fail"
    expect(code).toBe(EXIT.fail);
    const parsed = JSON.parse(out) as DoctorReport;
    expect(parsed.exitCode).toBe(EXIT.fail);
    expect(parsed.summary).toEqual({ ok: 5, warn: 1, fail: 2 });
    expect(parsed.checks.map((c) => c.id)).toEqual([
      'daemon',
      'socket',
      'cgroup',
      'proc',
      'logs',
      'state',
      'otlp',
      'listen',
    ]);
    expect(err).toBe('');

    out = '';
    const usage = await runDoctor({
      flags: { output: 'xml' },
      env: {},
      write: (s) => (out += s),
      writeError: (s) => (err += s),
    });
    expect(usage).toBe(EXIT.usage);
    expect(err).toBe('doctor: --output must be text or json, not xml\n');
    expect(out).toBe('');
  });

  it('writes only through its writers (nothing on the process streams)', async () => {
    const spies = [vi.spyOn(process.stdout, 'write'), vi.spyOn(process.stderr, 'write')];
    try {
      let out = '';
      let err = '';
      const w = { write: (s: string) => (out += s), writeError: (s: string) => (err += s) };
      await runDoctor({ flags: flags(), env: {}, ...w });
      await runDoctor({ flags: { output: 'yaml' }, env: {}, ...w });
      expect(out.startsWith('FAIL  1. ')).toBe(true);
      expect(err).toContain('not yaml');
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
