import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import {
  OtlpSettingsError,
  otlpSignalDisabled,
  resolveOtlpSignal,
} from '../../../src/exporters/otlp-env.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir('hm-otlp-env');
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const pem = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
const CA = file('ca.pem', pem('CERTIFICATE'));
const CA_TRACES = file('ca-traces.pem', pem('CERTIFICATE') + '# traces\n');
const KEY = file('client.key', pem('PRIVATE KEY'));
const CERT = file('client.pem', pem('CERTIFICATE') + '# client\n');

function otlp(env: Record<string, string>) {
  return loadConfig({ env }).config.otlp;
}
function both(env: Record<string, string>) {
  const o = otlp(env);
  return { logs: resolveOtlpSignal(o, 'logs'), traces: resolveOtlpSignal(o, 'traces') };
}
function settingsError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof OtlpSettingsError) return err.message;
    throw err;
  }
  throw new Error('expected an OtlpSettingsError');
}

describe('resolveOtlpSignal: endpoints', () => {
  it('sends nothing when no endpoint is set', () => {
    expect(both({})).toEqual({ logs: undefined, traces: undefined });
  });

  it('appends /v1/<signal> to the generic endpoint for HTTP, trailing slash or not', () => {
    const r = both({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    expect(r.logs?.url).toBe('http://collector:4318/v1/logs');
    expect(r.traces?.url).toBe('http://collector:4318/v1/traces');
    const p = both({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp' });
    expect(p.traces?.url).toBe('https://gw.example/otlp/v1/traces');
    expect(p.traces?.secure).toBe(true);
  });

  it('uses a signal endpoint as it is, without adding a path', () => {
    const r = both({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999',
    });
    expect(r.traces?.url).toBe('http://traces:9999');
    expect(r.logs?.url).toBe('http://collector:4318/v1/logs');
  });

  it('uses the generic endpoint as it is for gRPC', () => {
    const r = both({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    expect(r.traces).toMatchObject({
      url: 'http://collector:4317',
      protocol: 'grpc',
      secure: false,
    });
    expect(r.logs).toMatchObject({ url: 'http://collector:4317', protocol: 'grpc' });
  });

  it('lets a signal protocol override the generic one (and the path follows it)', () => {
    const r = both({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
    });
    expect(r.traces).toMatchObject({ protocol: 'grpc', url: 'http://collector:4318' });
    expect(r.logs).toMatchObject({
      protocol: 'http/protobuf',
      url: 'http://collector:4318/v1/logs',
    });
  });

  it('refuses an unknown protocol naming the variable', () => {
    let err: unknown;
    try {
      otlp({ OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'thrift' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).toContain('otlp.logs_protocol');
    expect(String(err)).toContain('OTEL_EXPORTER_OTLP_LOGS_PROTOCOL');
  });
});

describe('resolveOtlpSignal: headers, timeout, compression', () => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };

  it('percent-decodes headers; a signal header wins over the generic one of the same name', () => {
    const r = both({
      ...base,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Basic%20YWI6Y2Q%3D,x-tenant=a',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=traces-only',
    });
    expect(r.logs?.headers).toEqual({ authorization: 'Basic YWI6Y2Q=', 'x-tenant': 'a' });
    expect(r.traces?.headers).toEqual({
      authorization: 'Basic YWI6Y2Q=',
      'x-tenant': 'traces-only',
    });
  });

  it('adds headers from a file (commas or newlines, e.g. a Docker secret)', () => {
    const secret = file('headers', 'authorization=Bearer%20s3cr3t\nx-scope=team-a\n');
    const logsSecret = file('logs-headers', 'x-logs-token=abc');
    const r = both({
      ...base,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-static=1',
      OTEL_EXPORTER_OTLP_HEADERS_FILE: secret,
      OTEL_EXPORTER_OTLP_LOGS_HEADERS_FILE: logsSecret,
    });
    expect(r.traces?.headers).toEqual({
      'x-static': '1',
      authorization: 'Bearer s3cr3t',
      'x-scope': 'team-a',
    });
    expect(r.logs?.headers).toEqual({
      'x-static': '1',
      authorization: 'Bearer s3cr3t',
      'x-scope': 'team-a',
      'x-logs-token': 'abc',
    });
  });

  it('names the key, the variable and the file when a headers file is unusable', () => {
    const o = otlp({ ...base, OTEL_EXPORTER_OTLP_HEADERS_FILE: join(dir, 'missing') });
    const msg = settingsError(() => resolveOtlpSignal(o, 'traces'));
    expect(msg).toContain('otlp.headers_file');
    expect(msg).toContain('OTEL_EXPORTER_OTLP_HEADERS_FILE');
    expect(msg).toContain(join(dir, 'missing'));
    const junk = file('junk-headers', 'just a token');
    const o2 = otlp({ ...base, OTEL_EXPORTER_OTLP_TRACES_HEADERS_FILE: junk });
    expect(settingsError(() => resolveOtlpSignal(o2, 'traces'))).toMatch(
      /OTEL_EXPORTER_OTLP_TRACES_HEADERS_FILE.*expected key=value/,
    );
    const crlf = file('crlf-headers', 'bad%0Aname=x');
    const o3 = otlp({ ...base, OTEL_EXPORTER_OTLP_HEADERS_FILE: crlf });
    expect(settingsError(() => resolveOtlpSignal(o3, 'logs'))).toContain('not a valid header name');
  });

  it('reads the timeout variables in milliseconds, per signal', () => {
    const r = both({
      ...base,
      OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
      OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '2500',
    });
    expect(r.traces?.timeoutMs).toBe(5000);
    expect(r.logs?.timeoutMs).toBe(2500);
    expect(both(base).traces?.timeoutMs).toBe(10_000);
    // HARBORMASTER_* is in seconds and beats the standard variable
    const h = both({
      ...base,
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '100',
      HARBORMASTER_OTLP_TRACES_TIMEOUT_SECONDS: '3',
    });
    expect(h.traces?.timeoutMs).toBe(3000);
  });

  it('takes compression per signal', () => {
    const r = both({
      ...base,
      OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
      OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
    });
    expect(r.logs?.compression).toBe('none');
    expect(r.traces?.compression).toBe('gzip');
  });
});

describe('resolveOtlpSignal: TLS', () => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4318' };

  it('reads the CA and the client pair, each from the signal variable when set', () => {
    const r = both({
      ...base,
      OTEL_EXPORTER_OTLP_CERTIFICATE: CA,
      OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: CA_TRACES,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: KEY,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: CERT,
    });
    expect(r.logs?.tls.ca?.toString()).toBe(pem('CERTIFICATE'));
    expect(r.traces?.tls.ca?.toString()).toContain('# traces');
    expect(r.traces?.tls.key?.toString()).toBe(pem('PRIVATE KEY'));
    expect(r.traces?.tls.cert?.toString()).toContain('# client');
    expect(r.logs?.warnings).toEqual([]);
  });

  it('refuses half a client pair and unreadable or non-PEM files, naming them', () => {
    expect(
      settingsError(() =>
        resolveOtlpSignal(otlp({ ...base, OTEL_EXPORTER_OTLP_CLIENT_KEY: KEY }), 'logs'),
      ),
    ).toMatch(/needs both a client key and a client certificate.*only the key/);
    const missing = join(dir, 'nope.pem');
    const msg = settingsError(() =>
      resolveOtlpSignal(otlp({ ...base, OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: missing }), 'logs'),
    );
    expect(msg).toContain('otlp.logs_certificate (OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE)');
    expect(msg).toContain(missing);
    const notPem = file('not.pem', 'hello');
    expect(
      settingsError(() =>
        resolveOtlpSignal(otlp({ ...base, OTEL_EXPORTER_OTLP_CERTIFICATE: notPem }), 'traces'),
      ),
    ).toContain('holds no PEM block');
  });

  it('warns that a certificate does nothing with an http:// endpoint', () => {
    const r = resolveOtlpSignal(
      otlp({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_CERTIFICATE: CA }),
      'traces',
    );
    expect(r?.warnings.join('\n')).toMatch(/not https:\/\/, so TLS is not used/);
  });
});

describe('OTEL_SDK_DISABLED and OTEL_<SIGNAL>_EXPORTER', () => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  it('switches every signal off with OTEL_SDK_DISABLED=true', () => {
    const o = otlp({ ...base, OTEL_SDK_DISABLED: 'true' });
    expect(otlpSignalDisabled(o, 'logs')).toContain('OTEL_SDK_DISABLED');
    expect(both({ ...base, OTEL_SDK_DISABLED: 'true' })).toEqual({
      logs: undefined,
      traces: undefined,
    });
    expect(both({ ...base, OTEL_SDK_DISABLED: 'false' }).traces).toBeDefined();
  });
  it('switches one signal off with OTEL_TRACES_EXPORTER=none / OTEL_LOGS_EXPORTER=none', () => {
    const t = both({ ...base, OTEL_TRACES_EXPORTER: 'none' });
    expect(t.traces).toBeUndefined();
    expect(t.logs).toBeDefined();
    const l = both({ ...base, OTEL_LOGS_EXPORTER: 'none' });
    expect(l.logs).toBeUndefined();
    expect(l.traces).toBeDefined();
  });
});
