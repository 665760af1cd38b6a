/**
 * What the OTLP/gRPC exporters (logs and traces) share: channel credentials and metadata from
 * the resolved settings, and the delivery contract for gRPC status codes
 * (https://opentelemetry.io/docs/specs/otlp/#failures): UNAVAILABLE, RESOURCE_EXHAUSTED
 * (after the server's RetryInfo delay when it sends one), ABORTED, DEADLINE_EXCEEDED, CANCELLED,
 * OUT_OF_RANGE and DATA_LOSS are retried; INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,
 * UNIMPLEMENTED and the rest are permanent (drop and count).
 */
import { isIP } from 'node:net';
import { credentials, Metadata, status as Status, type ChannelCredentials } from '@grpc/grpc-js';
import type { OtlpSignalSettings } from './otlp-env.js';

export type GrpcExportResult =
  | { status: 'success' }
  | { status: 'retryable'; error: Error; retryAfterMs?: number }
  | { status: 'failure'; error: Error };

const RETRYABLE = new Set<number>([
  Status.CANCELLED,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
  Status.ABORTED,
  Status.OUT_OF_RANGE,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/** `UNAVAILABLE` for 14; `UNKNOWN_<n>` for codes outside the enum. */
export function grpcStatusName(code: number): string {
  const name = (Status as unknown as Record<number, string | undefined>)[code];
  return typeof name === 'string' ? name : `UNKNOWN_${code}`;
}

/**
 * Channel credentials: TLS (with the configured CA and client pair) for https://, else plaintext.
 *
 * An endpoint given as an IP address (`https://10.0.0.5:4317`): @grpc/grpc-js (1.14) passes the
 * target host as the TLS `servername` (SNI) whatever it is, and Node.js 26 refuses an IP there
 * (ERR_INVALID_ARG_VALUE; RFC 6066 allows no IP in SNI; Node 20 only warned, DEP0123), so every
 * connection failed with UNAVAILABLE. The secure connector's options leave `servername` out for
 * an IP host: no SNI is sent, and the certificate is still checked against the IP (`host`).
 */
export function grpcCredentials(s: OtlpSignalSettings): ChannelCredentials {
  if (!s.secure) return credentials.createInsecure();
  const creds = credentials.createSsl(s.tls.ca ?? null, s.tls.key ?? null, s.tls.cert ?? null);
  const create = creds._createSecureConnector.bind(creds);
  creds._createSecureConnector = (target, options, callCredentials) => {
    const connector = create(target, options, callCredentials);
    const o = (connector as { connectionOptions?: { servername?: string } }).connectionOptions;
    if (o?.servername !== undefined && isIP(o.servername) !== 0) delete o.servername;
    return connector;
  };
  return creds;
}

/** gRPC metadata from the configured headers (names lower-cased, as HTTP/2 requires). */
export function grpcMetadata(headers: Readonly<Record<string, string>>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k.toLowerCase(), v);
  return md;
}

/** `host:port` of an http(s):// endpoint (port 80/443 when it has none). */
export function grpcAddress(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

// ---- minimal protobuf reading (google.rpc.Status / RetryInfo, partial success) ----------------

interface Field {
  no: number;
  wire: number;
  /** varint value (wire 0) */
  n?: bigint;
  /** bytes (wire 2) */
  b?: Buffer;
}

/** The top-level fields of a protobuf message; undefined when it is not well formed. */
export function protoFields(buf: Buffer): Field[] | undefined {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint | undefined => {
    let v = 0n;
    let shift = 0n;
    while (i < buf.length && shift < 70n) {
      const byte = buf[i++] as number;
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return v;
      shift += 7n;
    }
    return undefined;
  };
  while (i < buf.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const n = varint();
      if (n === undefined) return undefined;
      out.push({ no, wire, n });
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || i + Number(len) > buf.length) return undefined;
      out.push({ no, wire, b: buf.subarray(i, i + Number(len)) });
      i += Number(len);
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else return undefined;
    if (i > buf.length) return undefined;
  }
  return out;
}

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/** The delay of a google.rpc.RetryInfo in `grpc-status-details-bin`, in ms, if there is one. */
export function retryInfoDelayMs(md: Metadata | undefined): number | undefined {
  const raw = md?.get('grpc-status-details-bin')[0];
  if (!raw || typeof raw === 'string') return undefined;
  const status = protoFields(raw);
  for (const f of status ?? []) {
    if (f.no !== 3 || !f.b) continue; // Status.details: repeated google.protobuf.Any
    const any = protoFields(f.b);
    const type = any?.find((x) => x.no === 1)?.b?.toString('utf8');
    const value = any?.find((x) => x.no === 2)?.b;
    if (type !== RETRY_INFO_TYPE || !value) continue;
    const delay = protoFields(value)?.find((x) => x.no === 1)?.b; // RetryInfo.retry_delay
    if (!delay) return 0;
    const d = protoFields(delay) ?? [];
    const secs = Number(d.find((x) => x.no === 1)?.n ?? 0n);
    const nanos = Number(d.find((x) => x.no === 2)?.n ?? 0n);
    const ms = secs * 1000 + Math.round(nanos / 1e6);
    return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 3_600_000) : undefined;
  }
  return undefined;
}

/** The delivery contract for a failed call (`err.code` is the gRPC status). */
export function classifyGrpcError(err: {
  code?: number;
  details?: string;
  message?: string;
  metadata?: Metadata;
}): Exclude<GrpcExportResult, { status: 'success' }> {
  const code = typeof err.code === 'number' ? err.code : Status.UNKNOWN;
  const name = grpcStatusName(code);
  const error = new Error(
    `gRPC ${name}: ${err.details || err.message || 'no details'}`.slice(0, 1000),
  ) as Error & { grpcCode: number };
  error.grpcCode = code;
  if (!RETRYABLE.has(code)) return { status: 'failure', error };
  const retryAfterMs = retryInfoDelayMs(err.metadata);
  return retryAfterMs === undefined
    ? { status: 'retryable', error }
    : { status: 'retryable', error, retryAfterMs };
}
