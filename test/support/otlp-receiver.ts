/**
 * A fake OTLP/HTTP receiver for tests: it accepts `POST /v1/logs` and `POST /v1/traces`,
 * decodes the REAL protobuf wire format (protobufjs with the opentelemetry-proto messages
 * below, copied field-for-field from opentelemetry-proto v1.x) or OTLP/JSON, gzip or not,
 * and keeps the decoded requests for assertions.
 *
 * Decoded shape: protobufjs `toObject` with lowerCamelCase keys, int64 as decimal strings
 * (`timeUnixNano: '1700000000000000000'`), enums as numbers, and the ids (`traceId`,
 * `spanId`, `parentSpanId`) as lowercase hex strings. `attrs()` flattens a KeyValue list.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

// Mirrors opentelemetry/proto/{common,resource,trace,logs,collector}/v1/*.proto.
const OTLP_PROTO = `
syntax = "proto3";
package opentelemetry.proto;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}
message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  enum SpanKind {
    SPAN_KIND_UNSPECIFIED = 0;
    SPAN_KIND_INTERNAL = 1;
    SPAN_KIND_SERVER = 2;
    SPAN_KIND_CLIENT = 3;
    SPAN_KIND_PRODUCER = 4;
    SPAN_KIND_CONSUMER = 5;
  }
  SpanKind kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  message Event {
    fixed64 time_unix_nano = 1;
    string name = 2;
    repeated KeyValue attributes = 3;
    uint32 dropped_attributes_count = 4;
  }
  repeated Event events = 11;
  uint32 dropped_events_count = 12;
  message Link {
    bytes trace_id = 1;
    bytes span_id = 2;
    string trace_state = 3;
    repeated KeyValue attributes = 4;
    uint32 dropped_attributes_count = 5;
    fixed32 flags = 6;
  }
  repeated Link links = 13;
  uint32 dropped_links_count = 14;
  Status status = 15;
}
message Status {
  reserved 1;
  string message = 2;
  enum StatusCode {
    STATUS_CODE_UNSET = 0;
    STATUS_CODE_OK = 1;
    STATUS_CODE_ERROR = 2;
  }
  StatusCode code = 3;
}

message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ResourceLogs {
  reserved 1000;
  Resource resource = 1;
  repeated ScopeLogs scope_logs = 2;
  string schema_url = 3;
}
message ScopeLogs {
  InstrumentationScope scope = 1;
  repeated LogRecord log_records = 2;
  string schema_url = 3;
}
message LogRecord {
  reserved 4;
  fixed64 time_unix_nano = 1;
  fixed64 observed_time_unix_nano = 11;
  int32 severity_number = 2;
  string severity_text = 3;
  AnyValue body = 5;
  repeated KeyValue attributes = 6;
  uint32 dropped_attributes_count = 7;
  fixed32 flags = 8;
  bytes trace_id = 9;
  bytes span_id = 10;
  string event_name = 12;
}
`;

const root = protobuf.parse(OTLP_PROTO, { keepCase: false }).root;
const TraceRequestType = root.lookupType('opentelemetry.proto.ExportTraceServiceRequest');
const LogsRequestType = root.lookupType('opentelemetry.proto.ExportLogsServiceRequest');

// ---- decoded shapes (what tests read) ----
export interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values: AnyValue[] };
  kvlistValue?: { values: KeyValue[] };
  bytesValue?: string;
}
export interface KeyValue {
  key: string;
  value?: AnyValue;
}
export interface Resource {
  attributes: KeyValue[];
}
export interface Scope {
  name: string;
  version: string;
}
export interface SpanEvent {
  timeUnixNano: string;
  name: string;
  attributes: KeyValue[];
}
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  events: SpanEvent[];
  status?: { code: number; message: string };
}
export interface ExportTraceServiceRequest {
  resourceSpans: {
    resource?: Resource;
    scopeSpans: { scope?: Scope; spans: Span[] }[];
  }[];
}
export interface LogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body?: AnyValue;
  attributes: KeyValue[];
  traceId: string;
  spanId: string;
  eventName: string;
}
export interface ExportLogsServiceRequest {
  resourceLogs: {
    resource?: Resource;
    scopeLogs: { scope?: Scope; logRecords: LogRecord[] }[];
  }[];
}

/** OTLP status codes (Span.Status.StatusCode). */
export const STATUS_CODE_UNSET = 0;
export const STATUS_CODE_OK = 1;
export const STATUS_CODE_ERROR = 2;

/** Plain JS value of an AnyValue (int64 as number when safe). */
export function anyValue(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue) return attrs(v.kvlistValue.values ?? []);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return undefined;
}

/** Flattens a KeyValue list into `{ key: plainValue }`. */
export function attrs(list: readonly KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** All spans of the given requests, each with its resource attributes flattened. */
export function allSpans(
  reqs: readonly ExportTraceServiceRequest[],
): (Span & { resource: Record<string, unknown> })[] {
  const out: (Span & { resource: Record<string, unknown> })[] = [];
  for (const r of reqs)
    for (const rs of r.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          out.push({ ...s, resource: attrs(rs.resource?.attributes) });
  return out;
}

/** All log records of the given requests, each with its resource attributes flattened. */
export function allLogRecords(
  reqs: readonly ExportLogsServiceRequest[],
): (LogRecord & { resource: Record<string, unknown> })[] {
  const out: (LogRecord & { resource: Record<string, unknown> })[] = [];
  for (const r of reqs)
    for (const rl of r.resourceLogs ?? [])
      for (const sl of rl.scopeLogs ?? [])
        for (const l of sl.logRecords ?? [])
          out.push({ ...l, resource: attrs(rl.resource?.attributes) });
  return out;
}

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

type Obj = Record<string, unknown>;
const list = (o: Obj, k: string): Obj[] => (Array.isArray(o[k]) ? (o[k] as Obj[]) : []);

function hexIds(o: Obj): void {
  for (const k of ID_FIELDS) {
    const val = o[k];
    if (typeof val === 'string') o[k] = Buffer.from(val, 'base64').toString('hex');
  }
}

/**
 * Rewrites the base64 id fields (protobufjs `bytes: String`) into lowercase hex where OTLP has
 * them: log records, spans and span links. Only those levels are walked (a walk of every value
 * of every record cost more than the decode itself on the 400,000-line log tests).
 */
function idsToHex(v: unknown): unknown {
  const req = v as Obj;
  for (const rl of list(req, 'resourceLogs'))
    for (const sl of list(rl, 'scopeLogs')) for (const r of list(sl, 'logRecords')) hexIds(r);
  for (const rs of list(req, 'resourceSpans'))
    for (const ss of list(rs, 'scopeSpans'))
      for (const sp of list(ss, 'spans')) {
        hexIds(sp);
        for (const link of list(sp, 'links')) hexIds(link);
      }
  return v;
}

/** OTLP/JSON encodes ids as hex (not base64): convert to bytes before fromObject. */
function jsonIdsToBytes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonIdsToBytes);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const [k, val] of Object.entries(o)) {
      if (ID_FIELDS.has(k) && typeof val === 'string') o[k] = Buffer.from(val, 'hex');
      else o[k] = jsonIdsToBytes(val);
    }
  }
  return v;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: Number,
  bytes: String,
  defaults: true,
  arrays: true,
};

/** Decodes one request body (already gunzipped). Exported for unit tests of encoders. */
export function decodeOtlp(
  kind: 'traces' | 'logs',
  body: Buffer,
  contentType: string,
): ExportTraceServiceRequest | ExportLogsServiceRequest {
  const type = kind === 'traces' ? TraceRequestType : LogsRequestType;
  let message: protobuf.Message;
  if (contentType.includes('json')) {
    const parsed = jsonIdsToBytes(JSON.parse(body.toString('utf8')) as unknown) as Record<
      string,
      unknown
    >;
    message = type.fromObject(parsed);
  } else {
    message = type.decode(body);
  }
  return idsToHex(type.toObject(message, TO_OBJECT)) as
    ExportTraceServiceRequest | ExportLogsServiceRequest;
}

export interface ReceivedRequest {
  path: string;
  contentType: string;
  contentEncoding: string;
  headers: IncomingMessage['headers'];
  status: number;
  bytes: number;
}

export interface ReceiverBehaviour {
  /** HTTP status to answer (default 200). Requests answered non-2xx are still decoded and recorded in `requestLog()` but NOT added to logs()/traces(). */
  status?: number;
  /** Retry-After header value (seconds) sent with non-2xx answers. */
  retryAfter?: number;
  /** Delay before answering, in ms. */
  delayMs?: number;
}

export interface OtlpReceiver {
  /** Base URL, e.g. `http://127.0.0.1:4318` (append `/v1/logs` or `/v1/traces`, or use as OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly url: string;
  readonly port: number;
  /** Decoded log requests that were accepted (answered 2xx). */
  logs(): ExportLogsServiceRequest[];
  /** Decoded trace requests that were accepted (answered 2xx). */
  traces(): ExportTraceServiceRequest[];
  /** Number of HTTP requests received so far (any path, any answer). */
  requests(): number;
  /** Every request received, in order, with the status it was answered with. */
  requestLog(): ReceivedRequest[];
  /** Decode errors (bad protobuf etc.), as messages. */
  errors(): string[];
  /** Changes the answer for subsequent requests (e.g. 503 with Retry-After). */
  setStatus(code: number, opts?: { retryAfter?: number }): void;
  setDelay(ms: number): void;
  /** Forgets everything received so far. */
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(
  opts: { behaviour?: ReceiverBehaviour; host?: string; port?: number } = {},
): Promise<OtlpReceiver> {
  const behaviour: ReceiverBehaviour = { status: 200, ...opts.behaviour };
  let logs: ExportLogsServiceRequest[] = [];
  let traces: ExportTraceServiceRequest[] = [];
  let log: ReceivedRequest[] = [];
  let errors: string[] = [];
  let count = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    count++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0] ?? '';
    const contentType = String(req.headers['content-type'] ?? '');
    const contentEncoding = String(req.headers['content-encoding'] ?? '');
    const status = behaviour.status ?? 200;
    if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
    const entry: ReceivedRequest = {
      path,
      contentType,
      contentEncoding,
      headers: req.headers,
      status,
      bytes: body.length,
    };
    const kind = path === '/v1/traces' ? 'traces' : path === '/v1/logs' ? 'logs' : undefined;
    if (req.method !== 'POST' || !kind) {
      entry.status = 404;
      log.push(entry);
      res.writeHead(404).end();
      return;
    }
    let decoded: ExportTraceServiceRequest | ExportLogsServiceRequest;
    try {
      if (contentEncoding.includes('gzip')) body = gunzipSync(body);
      decoded = decodeOtlp(kind, body, contentType);
    } catch (err) {
      errors.push(`${path}: ${(err as Error).message}`);
      entry.status = 400;
      log.push(entry);
      res.writeHead(400, { 'content-type': 'text/plain' }).end('cannot decode');
      return;
    }
    log.push(entry);
    if (status >= 200 && status < 300) {
      if (kind === 'traces') traces.push(decoded as ExportTraceServiceRequest);
      else logs.push(decoded as ExportLogsServiceRequest);
      // An empty ExportXServiceResponse encodes as zero bytes in protobuf.
      if (contentType.includes('json'))
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(status, { 'content-type': 'application/x-protobuf' }).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    if (behaviour.retryAfter !== undefined) headers['retry-after'] = String(behaviour.retryAfter);
    res.writeHead(status, headers).end(`status ${status}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      errors.push(String(err));
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';

  return {
    url: `http://${host}:${port}`,
    port,
    logs: () => logs,
    traces: () => traces,
    requests: () => count,
    requestLog: () => log,
    errors: () => errors,
    setStatus(code, o) {
      behaviour.status = code;
      behaviour.retryAfter = o?.retryAfter;
    },
    setDelay(ms) {
      behaviour.delayMs = ms;
    },
    reset() {
      logs = [];
      traces = [];
      log = [];
      errors = [];
      count = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
