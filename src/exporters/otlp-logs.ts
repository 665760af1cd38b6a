// OTLP/HTTP log exporter with delivery results the pipeline can acknowledge on.
//
// Why not the OpenTelemetry SDK's exporter as is: its export delegate retries internally and then
// reports a bare FAILED (the pipeline could not tell "retry later" from "rejected"), and the SDK's
// batch processor drops records when its queue is full. We use the library's serializer for
// OTLP/JSON (and as the reference for our protobuf encoder, see test/unit/logs), the library's
// retry classification (429/502/503/504 + network errors, Retry-After), and send one request per
// batch; retries, backoff and acknowledgement belong to the pipeline.
//
// Encoding and transport are separate: `logsEncoding` turns records into request bytes
// (protobuf straight from the record bytes, or OTLP/JSON), a LogsTransport sends bytes and
// answers an ExportResult (including OTLP partial success). OTLP/HTTP is OtlpHttpTransport; a
// gRPC transport plugs in beside it and shares the encoder (agent.ts picks the transport).
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCb, constants as zc } from 'node:zlib';
import { JsonLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { Config } from '../config/schema.js';
import { batchRecords, type BatchItem } from '../logs/run.js';
import type { ExportResult, LogExporter, LogRecord } from '../logs/types.js';
import { VERSION } from '../version.js';
import type { OtlpSignalSettings, OtlpTls } from './otlp-env.js';
import { GrpcLogsTransport } from './otlp-grpc-logs.js';
import { SCOPE_NAME, encodeLogsRequest } from './otlp-logs-encode.js';

const gzip = promisify(gzipCb);

export interface OtlpLogsExporterOptions {
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeoutMs: number;
  /** CA / client certificate / client key for https:// endpoints (OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_*). */
  tls?: OtlpTls;
}

/** Records → request bytes of one encoding. */
export interface LogsEncoding {
  readonly contentType: string;
  /** Copies runs of encoded lines as they are (protobuf); otherwise they are expanded. */
  readonly acceptsRuns: boolean;
  /** alloc: where to write the request (protobuf uses it; OTLP/JSON makes its own). */
  encode(batch: readonly BatchItem[], alloc?: (n: number) => Buffer): Buffer;
}

/** Request bytes → delivery result. */
export interface LogsTransport {
  readonly name: string;
  /**
   * `released` is called once nothing reads body any more (written out, compressed, or the request
   * torn down): the exporter reuses that buffer for the next request.
   */
  send(
    body: Buffer,
    contentType: string,
    signal: AbortSignal,
    released?: () => void,
  ): Promise<ExportResult>;
  shutdown?(): Promise<void>;
}

export const PROTOBUF_ENCODING: LogsEncoding = {
  contentType: 'application/x-protobuf',
  acceptsRuns: true,
  encode: (batch, alloc) => encodeLogsRequest(batch, alloc),
};

export const JSON_ENCODING: LogsEncoding = {
  contentType: 'application/json',
  acceptsRuns: false,
  encode: (batch) =>
    Buffer.from(
      JsonLogsSerializer.serializeRequest(toSdkLogRecords(batchRecords(batch)) as never) ?? [],
    ),
};

export function logsEncoding(protocol: 'http/protobuf' | 'http/json' | 'grpc'): LogsEncoding {
  return protocol === 'http/json' ? JSON_ENCODING : PROTOBUF_ENCODING;
}

/**
 * OTLP partial success in an ExportLogsServiceResponse (protobuf): field 1 `partial_success`
 * { 1: rejected_log_records int64, 2: error_message string }. Undefined when absent or unreadable.
 */
export function parsePartialSuccess(b: Buffer): { rejected: number; message: string } | undefined {
  const varint = (buf: Buffer, at: { i: number }): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (at.i >= buf.length) throw new Error('truncated');
      const c = buf[at.i++]!;
      n += (c & 0x7f) * mul;
      if (!(c & 0x80)) return n;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  };
  try {
    const at = { i: 0 };
    while (at.i < b.length) {
      const tag = varint(b, at);
      const wt = tag & 7;
      if (wt === 2) {
        const len = varint(b, at);
        const body = b.subarray(at.i, at.i + len);
        at.i += len;
        if (tag >>> 3 !== 1) continue;
        let rejected = 0;
        let message = '';
        const inner = { i: 0 };
        while (inner.i < body.length) {
          const t = varint(body, inner);
          if (t === 0x08) rejected = varint(body, inner);
          else if ((t & 7) === 2) {
            const l = varint(body, inner);
            if (t >>> 3 === 2) message = body.toString('utf8', inner.i, inner.i + l);
            inner.i += l;
          } else if ((t & 7) === 0) varint(body, inner);
          else return undefined;
        }
        return { rejected, message };
      } else if (wt === 0) varint(b, at);
      else return undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The logs URL from the otlp config section ('' when OTLP logs are not configured). */
export function otlpLogsUrl(otlp: Config['otlp']): string {
  if (otlp.logs_endpoint) return otlp.logs_endpoint;
  if (!otlp.endpoint) return '';
  return `${otlp.endpoint.replace(/\/+$/, '')}/v1/logs`;
}

const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

export function isRetryableStatus(code: number): boolean {
  return code === 429 || code === 502 || code === 503 || code === 504;
}

export function parseRetryAfterMs(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = Number(v.trim());
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/** The records as the OpenTelemetry SDK's ReadableLogRecord shape (for the library serializers). */
export function toSdkLogRecords(records: readonly LogRecord[]): unknown[] {
  const resources = new Map<object, object>();
  const scope = { name: SCOPE_NAME, version: VERSION };
  return records.map((r) => {
    let res = resources.get(r.resource);
    if (!res) {
      res = { attributes: { ...r.resource.attributes } };
      resources.set(r.resource, res);
    }
    const osec = Math.floor(r.observedMs / 1000);
    const out: Record<string, unknown> = {
      hrTime: [r.timeSec, r.timeNanos],
      hrTimeObserved: [osec, (r.observedMs - osec * 1000) * 1_000_000],
      body: r.body.toString('utf8'),
      attributes:
        r.eventName === undefined ? { 'log.iostream': r.stream, ...r.attributes } : r.attributes,
      droppedAttributesCount: r.droppedAttributesCount ?? 0,
      resource: res,
      instrumentationScope: scope,
    };
    if (r.eventName !== undefined) out.eventName = r.eventName;
    if (r.severityNumber !== undefined) out.severityNumber = r.severityNumber;
    if (r.severityText !== undefined) out.severityText = r.severityText;
    if (r.traceId !== undefined)
      out.spanContext = {
        traceId: r.traceId,
        ...(r.spanId !== undefined ? { spanId: r.spanId } : {}),
        ...(r.traceFlags !== undefined ? { traceFlags: r.traceFlags } : {}),
      };
    return out;
  });
}

/**
 * The OTLP logs exporter of resolved settings (src/exporters/otlp-env.ts): protobuf over gRPC for
 * protocol grpc, else OTLP/HTTP with the protocol's encoding and the settings' TLS.
 */
export function otlpLogsExporter(settings: OtlpSignalSettings): OtlpLogsExporter {
  if (settings.protocol === 'grpc')
    return new OtlpLogsExporter({
      encoding: PROTOBUF_ENCODING,
      transport: new GrpcLogsTransport(settings),
    });
  return new OtlpLogsExporter({
    url: settings.url,
    protocol: settings.protocol,
    headers: settings.headers,
    compression: settings.compression,
    timeoutMs: settings.timeoutMs,
    tls: settings.tls,
  });
}

/** Records → bytes (an encoding) → a transport. */
export class OtlpLogsExporter implements LogExporter {
  readonly name = 'otlp';
  private readonly encoding: LogsEncoding;
  private readonly transport: LogsTransport;

  constructor(
    opts: OtlpLogsExporterOptions | { encoding: LogsEncoding; transport: LogsTransport },
  ) {
    if ('transport' in opts) {
      this.encoding = opts.encoding;
      this.transport = opts.transport;
    } else {
      this.encoding = logsEncoding(opts.protocol);
      this.transport = new OtlpHttpTransport(opts);
    }
  }

  get acceptsRuns(): boolean {
    return this.encoding.acceptsRuns;
  }

  encode(batch: readonly BatchItem[]): Buffer {
    return this.encoding.encode(batch);
  }

  /**
   * One request buffer, reused from batch to batch once the transport released it: a new buffer
   * per request is garbage outside the heap that, with hardly anything allocated per line (runs
   * of encoded lines), waited long for a collection and raised peak RSS.
   */
  private spare: Buffer | undefined;
  private spareBusy = false;

  export(batch: readonly BatchItem[], signal: AbortSignal): Promise<ExportResult> {
    let lent = false;
    let body: Buffer;
    try {
      body = this.encoding.encode(batch, (n) => {
        if (this.spareBusy) return Buffer.allocUnsafe(n);
        // Grown with headroom: request sizes vary from batch to batch, and each regrowth leaves
        // a dead buffer of up to batch_max_bytes that only a full collection frees.
        if (!this.spare || this.spare.length < n)
          this.spare = Buffer.allocUnsafeSlow(Math.ceil(n * 1.5));
        this.spareBusy = lent = true;
        return this.spare.subarray(0, n);
      });
    } catch (err) {
      if (lent) this.spareBusy = false;
      throw err;
    }
    if (!lent) return this.transport.send(body, this.encoding.contentType, signal);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.spareBusy = false;
    };
    // A send that fails before its request starts (it rejects; sends resolve otherwise) never
    // reads the buffer again.
    return this.transport.send(body, this.encoding.contentType, signal, release).catch((err) => {
      release();
      throw err;
    });
  }

  shutdown(): Promise<void> {
    return this.transport.shutdown?.() ?? Promise.resolve();
  }
}

/** OTLP/HTTP: one POST per batch; 2xx with a partial success reports the rejected count. */
export class OtlpHttpTransport implements LogsTransport {
  readonly name = 'otlp-http';
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(
    private readonly opts: Pick<
      OtlpLogsExporterOptions,
      'url' | 'headers' | 'compression' | 'timeoutMs' | 'tls'
    >,
  ) {
    this.url = new URL(opts.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:')
      throw new Error(`OTLP logs endpoint must be http:// or https://, got ${opts.url}`);
    const tls = opts.tls ?? {};
    this.agent =
      this.url.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 2,
            ...(tls.ca ? { ca: tls.ca } : {}),
            ...(tls.cert ? { cert: tls.cert } : {}),
            ...(tls.key ? { key: tls.key } : {}),
          })
        : new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  async send(
    body: Buffer,
    contentType: string,
    signal: AbortSignal,
    released?: () => void,
  ): Promise<ExportResult> {
    const headers: Record<string, string> = {
      ...this.opts.headers,
      'content-type': contentType,
      'user-agent': `harbormaster/${VERSION}`,
    };
    if (this.opts.compression === 'gzip') {
      try {
        body = await gzip(body, { level: zc.Z_BEST_SPEED });
      } finally {
        released?.();
      }
      released = undefined;
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    return this.post(body, headers, signal, released);
  }
  private post(
    body: Buffer,
    headers: Record<string, string>,
    signal: AbortSignal,
    released?: () => void,
  ): Promise<ExportResult> {
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<ExportResult>((resolve) => {
      let settled = false;
      const done = (r: ExportResult): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const req = mod.request(
        this.url,
        { method: 'POST', headers, agent: this.agent, timeout: this.opts.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= 64 * 1024) chunks.push(c);
          });
          res.on('error', (err) => done({ status: 'retryable', error: err }));
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) {
              const ps = String(res.headers['content-type'] ?? '').includes('protobuf')
                ? parsePartialSuccess(Buffer.concat(chunks))
                : undefined;
              return done(
                ps && ps.rejected > 0
                  ? { status: 'success', rejected: ps.rejected, message: ps.message }
                  : { status: 'success' },
              );
            }
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 500);
            const error = new Error(
              `OTLP receiver answered HTTP ${code}${text ? `: ${text}` : ''}`,
            );
            if (isRetryableStatus(code)) {
              const ra = parseRetryAfterMs(res.headers['retry-after']);
              done(
                ra === undefined
                  ? { status: 'retryable', error }
                  : { status: 'retryable', error, retryAfterMs: ra },
              );
            } else done({ status: 'failure', error });
          });
        },
      );
      const onAbort = (): void => {
        req.destroy(new Error('export aborted'));
        done({ status: 'retryable', error: new Error('export aborted by shutdown') });
      };
      signal.addEventListener('abort', onAbort);
      req.on('timeout', () => {
        req.destroy(new Error(`OTLP export timed out after ${this.opts.timeoutMs} ms`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Network errors and timeouts are transient; anything else we cannot fix by retrying is
        // still retried: a log pipeline never drops a batch for a local error.
        void RETRYABLE_NETWORK;
        done({ status: 'retryable', error: err });
      });
      if (released) {
        // The body is free once written out ('finish': every write callback ran), or once the
        // request was torn down ('close' of a destroyed request: its writes are cancelled).
        req.once('finish', released);
        req.once('close', () => {
          if (req.destroyed || req.writableFinished) released();
        });
      }
      req.end(body);
    });
  }

  shutdown(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
