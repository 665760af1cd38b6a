// Issue 16 acceptance 8 (unit level): secrets are never printed — not by `config check`, not in
// configuration errors, not in the agent's own log lines.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/util/logger.js';
import { redactSecrets } from '../../../src/util/secrets.js';
import { tempDir } from '../../support/tmp.js';

const CLI = join(import.meta.dirname, '../../../src/cli.ts');

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpFile(text: string): string {
  const f = join(tempDir('hm-secrets'), 'harbormaster.yaml');
  writeFileSync(f, text);
  return f;
}

describe('config check', () => {
  it('prints a bearer header, header values and URL passwords masked', () => {
    const f = tmpFile(
      [
        'otlp:',
        '  endpoint: http://shipper:hunter2@127.0.0.1:4318',
        '  headers:',
        '    Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.s3cr3t',
        '    x-honeycomb-team: hc-team-key-123',
        '',
      ].join('\n'),
    );
    const r = cli(['config', 'check', f], {
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20from-env-token,dd-api-key=dd-xyz',
    });
    expect(r.code).toBe(0);
    for (const secret of [
      's3cr3t',
      'eyJhbGci',
      'hc-team-key',
      'hunter2',
      'from-env-token',
      'dd-xyz',
    ])
      expect(r.stdout + r.stderr).not.toContain(secret);
    // The names stay visible, so the operator can see what is configured.
    expect(r.stdout).toMatch(/authorization: "\*\*\*"/i);
    expect(r.stdout).toContain('dd-api-key: "***"');
    expect(r.stdout).toContain('http://shipper:***@127.0.0.1:4318');
  });

  it('does not echo a secret value in a configuration error', () => {
    const f = tmpFile('otlp:\n  headers:\n    authorization: 987654321\n');
    const r = cli(['config', 'check', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('otlp.headers.authorization');
    expect(r.stderr).not.toContain('987654321');
  });
});

describe("the agent's own logs", () => {
  it('mask secret fields, header values, credentials in messages and in errors', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger('info', sink);
    log.warn(
      { headers: { authorization: 'Bearer tok-1', 'x-scope-orgid': 'team' }, password: 'pw-2' },
      'Export to https://u:pw-3@collector failed.',
    );
    log.error({ err: new Error('POST failed with token=tok-4') }, 'Request failed.');
    log.info('plain message with Authorization: Basic dXNlcjpwdy01');
    const out = lines.join('');
    for (const secret of ['tok-1', 'team', 'pw-2', 'pw-3', 'tok-4', 'dXNlcjpwdy01'])
      expect(out).not.toContain(secret);
    expect(out).toContain('Export to https://u:***@collector failed.');
    expect(out).toContain('"x-scope-orgid":"***"');
    expect(out).toContain('"type":"Error"');
  });
});

describe('redactSecrets', () => {
  it('leaves ordinary settings alone and does not modify its input', () => {
    const cfg = {
      listen: '0.0.0.0:9105',
      logs: { processing: { redaction: { secret_keys: '(password|token)$', mask: '***' } } },
      otlp: { headers: { authorization: 'Bearer x' }, timeout_seconds: 10 },
    };
    const r = redactSecrets(cfg);
    expect(r.listen).toBe('0.0.0.0:9105');
    expect(r.logs.processing.redaction.secret_keys).toBe('(password|token)$');
    expect(r.otlp.headers.authorization).toBe('***');
    expect(r.otlp.timeout_seconds).toBe(10);
    expect(cfg.otlp.headers.authorization).toBe('Bearer x');
  });
});

describe('doctor', () => {
  it('prints an OTLP endpoint with its password masked', async () => {
    const { createServer } = await import('node:net');
    const { runDoctor } = await import('../../../src/doctor.js');
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    let out = '';
    try {
      await runDoctor({
        flags: { output: 'text' },
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://shipper:doctor-pw@127.0.0.1:${port}` },
        write: (s) => (out += s),
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(out).toContain(`http://shipper:***@127.0.0.1:${port}`);
    expect(out).not.toContain('doctor-pw');
  });
});
