/**
 * OTLP/gRPC transport for logs: sends an already-encoded ExportLogsServiceRequest (protobuf
 * bytes, the same body the HTTP exporter posts) to
 * `opentelemetry.proto.collector.logs.v1.LogsService/Export` and reports what became of it in
 * the exporter contract of the log pipeline: success (with the receiver's partial success, if
 * any: rejected records are dropped and counted by the caller with the receiver's message),
 * retryable (with the RetryInfo delay) or failure. TLS and mTLS come from the resolved settings
 * (src/exporters/otlp-env.ts). Nothing here throws; one channel is kept and reconnects by itself.
 */
import { Client, type ServiceError } from '@grpc/grpc-js';
import type { ExportResult } from '../logs/types.js';
import type { OtlpSignalSettings } from './otlp-env.js';
import type { LogsTransport } from './otlp-logs.js';
import {
  classifyGrpcError,
  grpcAddress,
  grpcCredentials,
  grpcMetadata,
  protoFields,
  type GrpcExportResult,
} from './otlp-grpc.js';

export const LOGS_EXPORT_METHOD = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

export interface LogsPartialSuccess {
  /** `rejected_log_records`: records the receiver did not accept (drop and count them). */
  rejectedLogRecords: number;
  /** `error_message`: why, in the receiver's words ('' when it gave none). */
  errorMessage: string;
}

export type GrpcLogsExportResult =
  | { status: 'success'; partialSuccess?: LogsPartialSuccess }
  | Exclude<GrpcExportResult, { status: 'success' }>;

/** Reads ExportLogsServiceResponse.partial_success; undefined when absent or empty. */
export function decodeLogsPartialSuccess(body: Buffer): LogsPartialSuccess | undefined {
  const ps = protoFields(body)?.find((f) => f.no === 1 && f.b)?.b;
  if (!ps) return undefined;
  const fields = protoFields(ps) ?? [];
  const n = fields.find((f) => f.no === 1 && f.n !== undefined)?.n ?? 0n;
  const errorMessage = fields.find((f) => f.no === 2 && f.b)?.b?.toString('utf8') ?? '';
  // int64 on the wire: negative values are garbage from a broken receiver; treat them as 0
  const rejectedLogRecords = n > 0n && n < 2n ** 53n ? Number(n) : 0;
  if (rejectedLogRecords === 0 && errorMessage === '') return undefined;
  return { rejectedLogRecords, errorMessage: errorMessage.slice(0, 1000) };
}

const identity = (b: Buffer): Buffer => b;

export class OtlpGrpcLogsTransport {
  private readonly client: Client;
  private closed = false;

  constructor(private readonly settings: OtlpSignalSettings) {
    if (settings.protocol !== 'grpc')
      throw new Error(
        `OtlpGrpcLogsTransport needs protocol grpc, got ${settings.protocol} (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL)`,
      );
    this.client = new Client(grpcAddress(settings.url), grpcCredentials(settings), {
      'grpc.default_compression_algorithm': settings.compression === 'gzip' ? 2 : 0,
      'grpc.primary_user_agent': 'harbormaster',
      // reconnect quickly after the receiver comes back (default backoff grows to 120 s)
      'grpc.max_reconnect_backoff_ms': 5000,
    });
  }

  /** Sends one request body; resolves with the outcome, never rejects. */
  send(body: Buffer, signal?: AbortSignal): Promise<GrpcLogsExportResult> {
    if (this.closed)
      return Promise.resolve({ status: 'retryable', error: new Error('transport closed') });
    if (signal?.aborted)
      return Promise.resolve({ status: 'retryable', error: new Error('export aborted') });
    return new Promise<GrpcLogsExportResult>((resolve) => {
      const deadline = new Date(Date.now() + this.settings.timeoutMs);
      let call: { cancel(): void } | undefined;
      const onAbort = (): void => call?.cancel();
      try {
        call = this.client.makeUnaryRequest<Buffer, Buffer>(
          LOGS_EXPORT_METHOD,
          identity,
          identity,
          body,
          grpcMetadata(this.settings.headers),
          { deadline },
          (err: ServiceError | null, res?: Buffer) => {
            signal?.removeEventListener('abort', onAbort);
            if (err) {
              if (signal?.aborted)
                resolve({ status: 'retryable', error: new Error('export aborted') });
              else resolve(classifyGrpcError(err));
              return;
            }
            const partialSuccess = res ? decodeLogsPartialSuccess(res) : undefined;
            resolve(partialSuccess ? { status: 'success', partialSuccess } : { status: 'success' });
          },
        );
        signal?.addEventListener('abort', onAbort, { once: true });
      } catch (err) {
        resolve({ status: 'failure', error: err instanceof Error ? err : new Error(String(err)) });
      }
    });
  }

  /** Closes the channel; calls in flight end with CANCELLED. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

/**
 * The gRPC transport in the log pipeline's LogsTransport contract (the body is the protobuf
 * encoding; the content type is implied by gRPC). A partial success becomes `rejected` with the
 * receiver's message, which the export loop drops and counts as `export_rejected`, as on HTTP.
 */
export class GrpcLogsTransport implements LogsTransport {
  readonly name = 'otlp-grpc';
  private readonly grpc: OtlpGrpcLogsTransport;

  constructor(settings: OtlpSignalSettings) {
    this.grpc = new OtlpGrpcLogsTransport(settings);
  }

  async send(
    body: Buffer,
    _contentType: string,
    signal: AbortSignal,
    released?: () => void,
  ): Promise<ExportResult> {
    let res: GrpcLogsExportResult;
    try {
      // grpc-js frames (copies) the message when the call starts; after the call nothing reads it
      // that matters (with gzip, a call past its deadline may still be compressing it: only that
      // dead call's output can be affected).
      res = await this.grpc.send(body, signal);
    } finally {
      released?.();
    }
    if (res.status !== 'success') return res;
    const ps = res.partialSuccess;
    if (ps && ps.rejectedLogRecords > 0)
      return { status: 'success', rejected: ps.rejectedLogRecords, message: ps.errorMessage };
    return { status: 'success' };
  }

  shutdown(): Promise<void> {
    this.grpc.close();
    return Promise.resolve();
  }
}
