import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/tmp.js';

const CLI = join(import.meta.dirname, '../../src/cli.ts');

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpFile(text: string): string {
  const f = join(tempDir('hm-cli'), 'harbormaster.yaml');
  writeFileSync(f, text);
  return f;
}

describe('harbormaster config check', () => {
  it('lists all three mistakes with their paths and exits 2', () => {
    const f = tmpFile('listen: nowhere\ndocker:\n  request_timeout_seconds: fast\nlog_lvl: info\n');
    const r = cli(['config', 'check', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Invalid configuration');
    expect(r.stderr).toMatch(/- listen: expected host:port/);
    expect(r.stderr).toMatch(/- docker\.request_timeout_seconds: .*expected number/);
    expect(r.stderr).toMatch(/- log_lvl: unknown setting/);
  });

  it('prints the effective configuration of a valid file, with environment and flags applied', () => {
    const f = tmpFile('state_dir: /srv/hm\n');
    const r = cli(['config', 'check', f, '--listen', '127.0.0.1:9999'], {
      HARBORMASTER_LOG_LEVEL: 'debug',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('state_dir: /srv/hm');
    expect(r.stdout).toContain('listen: 127.0.0.1:9999');
    expect(r.stdout).toContain('log_level: debug');
  });

  it('exits 2 for an invalid environment variable when running', () => {
    const r = cli(['run'], { HARBORMASTER_LISTEN: 'bad' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/listen: expected host:port.*\(from env HARBORMASTER_LISTEN\)/);
  });

  it('explains usage and rejects unknown commands', () => {
    expect(cli(['help']).stdout).toContain('config check FILE');
    const r = cli(['launch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command launch');
  });
});
