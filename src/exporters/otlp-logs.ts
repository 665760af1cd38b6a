// OTLP/HTTP log exporter with delivery results the pipeline can acknowledge on.
//
// Why not the OpenTelemetry SDK's exporter as is: its export delegate retries internally and then
// reports a bare FAILED (the pipeline could not tell "retry later" from "rejected"), and the SDK's
// batch processor drops records when its queue is full. We use the library's serializer for
// OTLP/JSON (and as the reference for our protobuf encoder, see test/unit/logs), the library's
// retry classification (429/502/503/504 + network errors, Retry-After), and send one request per
// batch; retries, backoff and acknowledgement belong to the pipeline.
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCb, constants as zc } from 'node:zlib';
import { JsonLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { Config } from '../config/schema.js';
import type { ExportResult, LogExporter, LogRecord } from '../logs/types.js';
import { VERSION } from '../version.js';
import { SCOPE_NAME, encodeLogsRequest } from './otlp-logs-encode.js';

const gzip = promisify(gzipCb);

export interface OtlpLogsExporterOptions {
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeoutMs: number;
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
      attributes: { 'log.iostream': r.stream, ...r.attributes },
      droppedAttributesCount: r.droppedAttributesCount ?? 0,
      resource: res,
      instrumentationScope: scope,
    };
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

export class OtlpLogsExporter implements LogExporter {
  readonly name = 'otlp';
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(private readonly opts: OtlpLogsExporterOptions) {
    this.url = new URL(opts.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:')
      throw new Error(`OTLP logs endpoint must be http:// or https://, got ${opts.url}`);
    const A = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new A({ keepAlive: true, maxSockets: 2 });
  }

  encode(batch: readonly LogRecord[]): Buffer {
    if (this.opts.protocol === 'http/json') {
      return Buffer.from(
        JsonLogsSerializer.serializeRequest(toSdkLogRecords(batch) as never) ?? [],
      );
    }
    return encodeLogsRequest(batch);
  }

  async export(batch: readonly LogRecord[], signal: AbortSignal): Promise<ExportResult> {
    let body = this.encode(batch);
    const headers: Record<string, string> = {
      ...this.opts.headers,
      'content-type':
        this.opts.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      'user-agent': `harbormaster/${VERSION}`,
    };
    if (this.opts.compression === 'gzip') {
      body = await gzip(body, { level: zc.Z_BEST_SPEED });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    return this.post(body, headers, signal);
  }

  private post(
    body: Buffer,
    headers: Record<string, string>,
    signal: AbortSignal,
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
            if (code >= 200 && code < 300) return done({ status: 'success' });
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
      req.end(body);
    });
  }

  shutdown(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
