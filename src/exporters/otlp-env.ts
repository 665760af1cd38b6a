/**
 * The OTLP settings of one signal (logs or traces), resolved from the `otlp` config section the
 * way the OpenTelemetry specification resolves the OTEL_EXPORTER_OTLP_* variables
 * (https://opentelemetry.io/docs/specs/otel/protocol/exporter/): each of ENDPOINT, HEADERS,
 * TIMEOUT, COMPRESSION, PROTOCOL, CERTIFICATE, CLIENT_KEY and CLIENT_CERTIFICATE is taken from
 * the signal's own setting (`OTEL_EXPORTER_OTLP_LOGS_*`, `otlp.logs_*`) when that is set, else
 * from the generic one; headers are merged key by key, the signal's winning. The config loader has already mapped the variables onto the keys
 * (HARBORMASTER_OTLP_* beats OTEL_* beats the file).
 *
 * Endpoints: a signal endpoint is used as is; the generic one gets `/v1/<signal>` appended for
 * HTTP and is used as is for gRPC. Files (certificates, keys, header files) are read here, once,
 * so a bad path fails at start with the key, the variable and the file named.
 *
 * Used by the traces exporter now and by the logs exporter (HTTP or gRPC) of the log pipeline.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';

export type OtlpSignal = 'logs' | 'traces';
export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';
export type OtlpCompression = 'gzip' | 'none';

export interface OtlpTls {
  /** CA certificates (PEM) to trust instead of the system store. */
  ca?: Buffer;
  /** Client certificate chain (PEM) for mTLS. */
  cert?: Buffer;
  /** Client private key (PEM) for mTLS. */
  key?: Buffer;
}

export interface OtlpSignalSettings {
  signal: OtlpSignal;
  /** HTTP: the full URL requests go to. gRPC: `http(s)://host:port` (path ignored). */
  url: string;
  protocol: OtlpProtocol;
  /** HTTP headers or gRPC metadata. */
  headers: Record<string, string>;
  timeoutMs: number;
  compression: OtlpCompression;
  /** True for https:// (TLS); for gRPC an http:// endpoint means a plaintext channel. */
  secure: boolean;
  tls: OtlpTls;
  /** Settings that have no effect (e.g. a certificate with an http:// endpoint), as sentences. */
  warnings: string[];
}

/** A setting that cannot be used: names the key, the variable and what was wrong. */
export class OtlpSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OtlpSettingsError';
  }
}

type Otlp = Config['otlp'];

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function envOf(signal: OtlpSignal | undefined, suffix: string): string {
  return signal
    ? `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_${suffix}`
    : `OTEL_EXPORTER_OTLP_${suffix}`;
}

function keyOf(signal: OtlpSignal | undefined, key: string): string {
  return signal ? `otlp.${signal}_${key}` : `otlp.${key}`;
}

/** Why a signal is switched off by OTEL_SDK_DISABLED / OTEL_<SIGNAL>_EXPORTER, else undefined. */
export function otlpSignalDisabled(otlp: Otlp, signal: OtlpSignal): string | undefined {
  if (otlp.sdk_disabled) return 'OTEL_SDK_DISABLED=true (otlp.sdk_disabled)';
  const exporter = signal === 'logs' ? otlp.logs_exporter : otlp.traces_exporter;
  if (exporter === 'none')
    return `OTEL_${signal.toUpperCase()}_EXPORTER=none (otlp.${signal}_exporter)`;
  return undefined;
}

/**
 * Parses headers in the OTEL_EXPORTER_OTLP_HEADERS form (`k1=v1,k2=v2`, values percent-encoded);
 * newlines separate pairs too (header files). Throws OtlpSettingsError naming `what`.
 */
export function parseHeaders(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\r\n]+/)) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new OtlpSettingsError(`${what}: expected key=value, got "${part.trim()}"`);
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(part.slice(0, eq).trim());
      v = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new OtlpSettingsError(`${what}: bad percent-encoding in "${part.trim()}"`);
    }
    out[k] = v;
  }
  return out;
}

function checkHeaders(h: Record<string, string>, what: string): Record<string, string> {
  for (const [k, v] of Object.entries(h)) {
    if (!HEADER_NAME.test(k))
      throw new OtlpSettingsError(`${what}: "${k}" is not a valid header name`);
    if (/[\r\n\0]/.test(v))
      throw new OtlpSettingsError(`${what}: the value of "${k}" holds a line break or NUL`);
  }
  return h;
}

export interface ResolveOptions {
  /** Reads a file (tests inject failures); default fs.readFileSync. */
  readFile?: (path: string) => Buffer;
}

/**
 * The settings of `signal`, or undefined when no endpoint is configured for it or it is
 * switched off (see otlpSignalDisabled). Throws OtlpSettingsError for settings that cannot work.
 */
export function resolveOtlpSignal(
  otlp: Otlp,
  signal: OtlpSignal,
  opts: ResolveOptions = {},
): OtlpSignalSettings | undefined {
  if (otlpSignalDisabled(otlp, signal)) return undefined;
  const read = opts.readFile ?? ((p: string) => readFileSync(p));
  const sig = <K extends string>(k: K): unknown =>
    (otlp as unknown as Record<string, unknown>)[`${signal}_${k}`];

  const protocol = (sig('protocol') as OtlpProtocol | undefined) ?? otlp.protocol;
  const signalEndpoint = signal === 'logs' ? otlp.logs_endpoint : otlp.traces_endpoint;
  let url: string;
  if (signalEndpoint) url = signalEndpoint;
  else if (otlp.endpoint)
    url = protocol === 'grpc' ? otlp.endpoint : `${otlp.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
  else return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new OtlpSettingsError(
      `${signalEndpoint ? keyOf(signal, 'endpoint') : 'otlp.endpoint'}: "${url}" is not a URL`,
    );
  }
  const secure = parsed.protocol === 'https:';

  const readText = (key: string, env: string, file: string): string => {
    try {
      return read(file).toString('utf8');
    } catch (err) {
      throw new OtlpSettingsError(
        `${key} (${env}): cannot read ${file}: ${(err as Error).message}`,
      );
    }
  };
  const headersFrom = (s: OtlpSignal | undefined): Record<string, string> | undefined => {
    const inline = s ? (sig('headers') as Record<string, string> | undefined) : otlp.headers;
    const file = s ? (sig('headers_file') as string) : otlp.headers_file;
    if (inline === undefined && !file) return undefined;
    const out: Record<string, string> = { ...inline };
    if (file) {
      const key = keyOf(s, 'headers_file');
      const env = envOf(s, 'HEADERS_FILE');
      Object.assign(out, parseHeaders(readText(key, env, file), `${key} (${env}) file ${file}`));
    }
    return checkHeaders(out, `${keyOf(s, 'headers')} (${envOf(s, 'HEADERS')})`);
  };
  // the signal's own headers win key by key over the generic ones (as the OpenTelemetry JS
  // exporters merge them, so logs and traces agree)
  const headers = { ...headersFrom(undefined), ...headersFrom(signal) };

  const warnings: string[] = [];
  const pem = (k: 'certificate' | 'client_key' | 'client_certificate'): Buffer | undefined => {
    const own = sig(k) as string;
    const s = own ? signal : undefined;
    const file = own || otlp[k];
    if (!file) return undefined;
    const key = keyOf(s, k);
    const env = envOf(s, k.toUpperCase());
    const text = readText(key, env, file);
    if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text))
      throw new OtlpSettingsError(`${key} (${env}): ${file} holds no PEM block`);
    if (!secure)
      warnings.push(
        `${key} (${env}) is set but the ${signal} endpoint ${url} is not https://, so TLS is not used.`,
      );
    return Buffer.from(text);
  };
  const tls: OtlpTls = {};
  const ca = pem('certificate');
  const key = pem('client_key');
  const cert = pem('client_certificate');
  if (ca) tls.ca = ca;
  if (key) tls.key = key;
  if (cert) tls.cert = cert;
  if ((key === undefined) !== (cert === undefined))
    throw new OtlpSettingsError(
      `mTLS for ${signal} needs both a client key and a client certificate (${envOf(undefined, 'CLIENT_KEY')} and ${envOf(undefined, 'CLIENT_CERTIFICATE')}, or their ${signal.toUpperCase()} forms); only the ${key ? 'key' : 'certificate'} is set`,
    );

  const timeoutSeconds = (sig('timeout_seconds') as number | undefined) ?? otlp.timeout_seconds;
  return {
    signal,
    url,
    protocol,
    headers,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    compression: (sig('compression') as OtlpCompression | undefined) ?? otlp.compression,
    secure,
    tls,
    warnings,
  };
}
