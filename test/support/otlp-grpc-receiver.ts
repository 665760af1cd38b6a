// OTLP receivers for the gRPC and TLS tests: a real @grpc/grpc-js server implementing
// LogsService/Export and TraceService/Export (plaintext, TLS, or TLS requiring a client
// certificate), and an HTTPS variant of the OTLP/HTTP receiver. Both decode the real protobuf
// wire format with decodeOtlp from ./otlp-receiver.ts. They bind 127.0.0.1 port 0 by default.
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import {
  decodeOtlp,
  type ExportLogsServiceRequest,
  type ExportTraceServiceRequest,
} from './otlp-receiver.js';

export interface TlsServerOptions {
  key: Buffer;
  cert: Buffer;
  /** CA that client certificates must chain to. */
  ca?: Buffer;
  /** Refuse clients without a certificate signed by `ca`. */
  requireClientCert?: boolean;
}

export interface GrpcBehaviour {
  /** gRPC status to answer (0 = OK, else a grpc-js `status` value). Calls answered with an error are not kept in logs()/traces(). */
  code: number;
  details?: string;
  /** Adds a google.rpc.RetryInfo with this delay to the error's status details. */
  retryDelayMs?: number;
  /** With OK: a partial success (rejected records/spans and a message) in the response. */
  partialSuccess?: { rejected: number; message: string };
  /** Answer this much later (ms). */
  delayMs?: number;
}

export interface ReceivedCall {
  kind: 'logs' | 'traces';
  code: number;
  metadata: Record<string, string>;
  bytes: number;
}

export interface OtlpGrpcReceiver {
  /** `http://127.0.0.1:<port>` or `https://...` with TLS: use as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly port: number;
  logs(): ExportLogsServiceRequest[];
  traces(): ExportTraceServiceRequest[];
  calls(): ReceivedCall[];
  errors(): string[];
  setBehaviour(b: GrpcBehaviour): void;
  close(): Promise<void>;
}

// ---- tiny protobuf writer (google.rpc.Status with RetryInfo; partial success) ----------------
function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
export const fieldVarint = (no: number, n: number | bigint): Buffer =>
  Buffer.concat([varint((no << 3) | 0), varint(n)]);
export const fieldBytes = (no: number, b: Buffer | string): Buffer => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([varint((no << 3) | 2), varint(buf.length), buf]);
};

/** google.rpc.Status{code, message, details:[Any{RetryInfo{retry_delay}}]} */
export function statusWithRetryInfo(code: number, message: string, delayMs: number): Buffer {
  const duration = Buffer.concat([
    fieldVarint(1, Math.floor(delayMs / 1000)),
    fieldVarint(2, (delayMs % 1000) * 1e6),
  ]);
  const retryInfo = fieldBytes(1, duration);
  const any = Buffer.concat([
    fieldBytes(1, 'type.googleapis.com/google.rpc.RetryInfo'),
    fieldBytes(2, retryInfo),
  ]);
  return Buffer.concat([fieldVarint(1, code), fieldBytes(2, message), fieldBytes(3, any)]);
}

/** Export{Logs,Trace}ServiceResponse{partial_success{rejected, error_message}} */
export function partialSuccessResponse(rejected: number, message: string): Buffer {
  return fieldBytes(1, Buffer.concat([fieldVarint(1, rejected), fieldBytes(2, message)]));
}

const raw = (b: Buffer): Buffer => b;

export async function startOtlpGrpcReceiver(
  opts: { tls?: TlsServerOptions; behaviour?: GrpcBehaviour; host?: string; port?: number } = {},
): Promise<OtlpGrpcReceiver> {
  let behaviour: GrpcBehaviour = opts.behaviour ?? { code: GrpcStatus.OK };
  const logs: ExportLogsServiceRequest[] = [];
  const traces: ExportTraceServiceRequest[] = [];
  const calls: ReceivedCall[] = [];
  const errors: string[] = [];

  const handler =
    (kind: 'logs' | 'traces', fixed?: GrpcBehaviour) =>
    (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void => {
      const b = fixed ?? behaviour;
      if (b.delayMs) {
        const { delayMs, ...rest } = b;
        setTimeout(() => handler(kind, rest)(call, callback), delayMs);
        return;
      }
      const md: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap()))
        md[k] = typeof v === 'string' ? v : v.toString('base64');
      calls.push({ kind, code: b.code, metadata: md, bytes: call.request.length });
      if (b.code !== 0) {
        const trailer = new Metadata();
        if (b.retryDelayMs !== undefined)
          trailer.set(
            'grpc-status-details-bin',
            statusWithRetryInfo(b.code, b.details ?? '', b.retryDelayMs),
          );
        callback({ code: b.code, details: b.details ?? 'test receiver', metadata: trailer });
        return;
      }
      try {
        const decoded = decodeOtlp(kind, call.request, 'application/x-protobuf');
        if (kind === 'logs') logs.push(decoded as ExportLogsServiceRequest);
        else traces.push(decoded as ExportTraceServiceRequest);
      } catch (err) {
        errors.push(`${kind}: ${(err as Error).message}`);
        callback({ code: GrpcStatus.INVALID_ARGUMENT, details: 'cannot decode' });
        return;
      }
      callback(
        null,
        b.partialSuccess
          ? partialSuccessResponse(b.partialSuccess.rejected, b.partialSuccess.message)
          : Buffer.alloc(0),
      );
    };

  const method = (path: string) => ({
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  });
  const server = new Server();
  server.addService(
    { Export: method('/opentelemetry.proto.collector.logs.v1.LogsService/Export') },
    { Export: handler('logs') },
  );
  server.addService(
    { Export: method('/opentelemetry.proto.collector.trace.v1.TraceService/Export') },
    { Export: handler('traces') },
  );
  const creds = opts.tls
    ? ServerCredentials.createSsl(
        opts.tls.ca ?? null,
        [{ private_key: opts.tls.key, cert_chain: opts.tls.cert }],
        opts.tls.requireClientCert ?? false,
      )
    : ServerCredentials.createInsecure();
  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${opts.port ?? 0}`, creds, (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    logs: () => logs,
    traces: () => traces,
    calls: () => calls,
    errors: () => errors,
    setBehaviour(b) {
      behaviour = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

export interface OtlpHttpsReceiver {
  readonly url: string;
  readonly port: number;
  logs(): ExportLogsServiceRequest[];
  traces(): ExportTraceServiceRequest[];
  /** TLS handshakes the server refused (e.g. no or an untrusted client certificate). */
  tlsErrors(): string[];
  close(): Promise<void>;
}

/** OTLP/HTTP over TLS (optionally requiring a client certificate). */
export async function startOtlpHttpsReceiver(
  tls: TlsServerOptions,
  opts: { host?: string; port?: number } = {},
): Promise<OtlpHttpsReceiver> {
  const logs: ExportLogsServiceRequest[] = [];
  const traces: ExportTraceServiceRequest[] = [];
  const tlsErrors: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0];
    const kind = path === '/v1/traces' ? 'traces' : path === '/v1/logs' ? 'logs' : undefined;
    if (req.method !== 'POST' || !kind) {
      res.writeHead(404).end();
      return;
    }
    if (String(req.headers['content-encoding'] ?? '').includes('gzip')) body = gunzipSync(body);
    const ct = String(req.headers['content-type'] ?? '');
    const decoded = decodeOtlp(kind, body, ct);
    if (kind === 'logs') logs.push(decoded as ExportLogsServiceRequest);
    else traces.push(decoded as ExportTraceServiceRequest);
    if (ct.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  };
  const server = createHttpsServer(
    {
      key: tls.key,
      cert: tls.cert,
      ...(tls.ca ? { ca: tls.ca } : {}),
      requestCert: tls.requireClientCert ?? false,
      rejectUnauthorized: tls.requireClientCert ?? false,
    },
    (req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(400).end();
      });
    },
  );
  server.on('tlsClientError', (err) => tlsErrors.push(err.message));
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://${host}:${port}`,
    port,
    logs: () => logs,
    traces: () => traces,
    tlsErrors: () => tlsErrors,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
