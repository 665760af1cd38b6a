import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, listLeaves, loadConfig } from '../../../src/config/load.js';
import { renderConfigReference } from '../../../src/config/reference.js';
import { tempDir } from '../../support/tmp.js';

function tmpFile(text: string): string {
  const dir = tempDir('hm-config');
  const f = join(dir, 'config.yaml');
  writeFileSync(f, text);
  return f;
}

function problems(fn: () => unknown): ConfigError['problems'] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives working defaults with no file, env or flags', () => {
    const { config } = loadConfig({ env: {} });
    expect(config.listen).toBe('0.0.0.0:9105');
    expect(config.state_dir).toBe('/var/lib/harbormaster');
    expect(config.docker.host).toBe('');
    expect(config.otlp.protocol).toBe('http/protobuf');
  });

  it('applies precedence: flag beats env beats file beats default', () => {
    const file = tmpFile('listen: 127.0.0.1:1111\nstate_dir: /from/file\nlog_level: debug\n');
    const fileOnly = loadConfig({ file, env: {} }).config;
    expect(fileOnly.listen).toBe('127.0.0.1:1111');
    const env = { HARBORMASTER_LISTEN: '127.0.0.1:2222', HARBORMASTER_STATE_DIR: '/from/env' };
    const withEnv = loadConfig({ file, env }).config;
    expect(withEnv.listen).toBe('127.0.0.1:2222');
    expect(withEnv.state_dir).toBe('/from/env');
    expect(withEnv.log_level).toBe('debug');
    const loaded = loadConfig({ file, env, flags: { listen: '127.0.0.1:3333' } });
    expect(loaded.config.listen).toBe('127.0.0.1:3333');
    expect(loaded.config.state_dir).toBe('/from/env');
    expect(loaded.sources.listen).toBe('flag --listen');
    expect(loaded.sources.state_dir).toBe('env HARBORMASTER_STATE_DIR');
  });

  it('honours the standard DOCKER_* and OTEL_* variables below HARBORMASTER_*', () => {
    const { config } = loadConfig({
      env: {
        DOCKER_HOST: 'tcp://127.0.0.1:2375',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=t1',
        OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      },
    });
    expect(config.docker.host).toBe('tcp://127.0.0.1:2375');
    expect(config.otlp.endpoint).toBe('http://127.0.0.1:4318');
    expect(config.otlp.headers).toEqual({ authorization: 'Bearer abc', 'x-tenant': 't1' });
    expect(config.otlp.timeout_seconds).toBe(5);
    expect(config.otlp.protocol).toBe('http/json');
    const overridden = loadConfig({
      env: { DOCKER_HOST: 'tcp://127.0.0.1:2375', HARBORMASTER_DOCKER_HOST: 'unix:///x.sock' },
    });
    expect(overridden.config.docker.host).toBe('unix:///x.sock');
  });

  it('coerces numbers and booleans from the environment and flags', () => {
    const { config } = loadConfig({
      env: { HARBORMASTER_DOCKER_TLS_VERIFY: 'true' },
      flags: { 'docker-removed-grace-seconds': '5' },
    });
    expect(config.docker.tls_verify).toBe(true);
    expect(config.docker.removed_grace_seconds).toBe(5);
  });

  it('reports every mistake in a file with its path and what was expected', () => {
    const file = tmpFile(
      [
        'listen: "not an address"',
        'log_level: loud',
        'docker:',
        '  removed_grace_seconds: -3',
        '  unknown_thing: 1',
      ].join('\n'),
    );
    const found = problems(() => loadConfig({ file, env: {} }));
    const paths = found.map((p) => p.path).sort();
    expect(paths).toEqual([
      'docker.removed_grace_seconds',
      'docker.unknown_thing',
      'listen',
      'log_level',
    ]);
    const byPath = Object.fromEntries(found.map((p) => [p.path, p.message]));
    expect(byPath.listen).toMatch(/host:port/);
    expect(byPath.log_level).toMatch(/expected one of .*"info"/);
    expect(byPath['docker.removed_grace_seconds']).toMatch(/>=0/);
    expect(byPath['docker.unknown_thing']).toMatch(/unknown setting/);
  });

  it('names the source of a bad value from the environment', () => {
    const found = problems(() =>
      loadConfig({ env: { HARBORMASTER_DOCKER_REQUEST_TIMEOUT_SECONDS: 'soon' } }),
    );
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe('docker.request_timeout_seconds');
    expect(found[0]?.source).toBe('env HARBORMASTER_DOCKER_REQUEST_TIMEOUT_SECONDS');
  });

  it('reports YAML syntax errors, unreadable files and unknown flags', () => {
    const bad = tmpFile('listen: [unclosed\n');
    expect(problems(() => loadConfig({ file: bad, env: {} }))[0]?.message).toMatch(/YAML/);
    expect(
      problems(() => loadConfig({ file: '/nonexistent/hm.yaml', env: {} }))[0]?.message,
    ).toMatch(/cannot read config file \/nonexistent\/hm.yaml/);
    expect(
      problems(() => loadConfig({ env: {}, flags: { 'no-such-flag': '1' } }))[0]?.message,
    ).toBe('unknown flag --no-such-flag');
  });

  it('derives an env variable and a flag for every key and documents each', () => {
    const leaves = listLeaves();
    expect(leaves.length).toBeGreaterThan(10);
    for (const leaf of leaves) {
      expect(leaf.description, leaf.path.join('.')).not.toBe('');
      expect(leaf.env).toMatch(/^HARBORMASTER_[A-Z0-9_]+$/);
    }
    const ref = renderConfigReference();
    for (const leaf of leaves) expect(ref).toContain(`\`${leaf.path.join('.')}\``);
    expect(ref).toContain('`HARBORMASTER_STATE_DIR`');
  });
});

describe('values that would break the agent later', () => {
  it('are rejected with the value named', () => {
    const bad = (env: Record<string, string>) =>
      problems(() => loadConfig({ env })).map((p) => `${p.path}: ${p.message}`);
    expect(bad({ HARBORMASTER_LISTEN: '0.0.0.0:99999' })).toEqual([
      'listen: expected a port from 0 to 65535, got "0.0.0.0:99999"',
    ]);
    expect(bad({ DOCKER_HOST: 'ftp://x' })[0]).toMatch(
      /^docker.host: expected unix:\/\/\/absolute\/path or tcp:\/\/host:port, got "ftp:\/\/x"/,
    );
    expect(bad({ HARBORMASTER_DOCKER_RECONNECT_MAX_BACKOFF_SECONDS: '0' })[0]).toMatch(
      /^docker.reconnect_max_backoff_seconds: .*>=0.25, got 0/,
    );
    expect(bad({ HARBORMASTER_METRICS_DISABLED_METRICS: 'cpu,nonsense_group' })[0]).toMatch(
      /^metrics.disabled_metrics.1: expected a metric group/,
    );
    expect(bad({ HARBORMASTER_DOCKER_REQUEST_TIMEOUT_SECONDS: 'abc' })[0]).toMatch(/got "abc"/);
  });
});
