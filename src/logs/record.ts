// Birth of a LogRecord (the only place one is constructed from source data) and the body
// helpers every stage uses: text only on demand, byte length without converting.
import type { Ack } from './ack.js';
import type { AttrValue, LogRecord, LogResource } from './types.js';

export const TRUNCATED_ATTR = 'harbormaster.log.truncated';

/** A new record as a source reads it: resource, stream and times are fixed from here on. */
export function newRecord(
  resource: LogResource,
  stream: 'stdout' | 'stderr',
  body: Buffer | string,
  timeSec: number,
  timeNanos: number,
  observedMs: number,
  ack: Ack | undefined,
  attributes?: Record<string, AttrValue>,
): LogRecord {
  // One shape for every record (hidden class): optional fields present as undefined.
  return {
    resource,
    stream,
    body,
    timeSec,
    timeNanos,
    observedMs,
    attributes,
    severityNumber: undefined,
    severityText: undefined,
    traceId: undefined,
    spanId: undefined,
    traceFlags: undefined,
    droppedAttributesCount: undefined,
    lines: undefined,
    eventName: undefined,
    ack,
  };
}

/**
 * The body as text. A Buffer body is decoded for the caller and left as it is: a stage that only
 * reads the text (filters, a parser that finds nothing, redaction that masks nothing) does not
 * change what the encoder copies; a stage that changes the text stores a string.
 */
export function textOf(r: LogRecord): string {
  return typeof r.body === 'string' ? r.body : r.body.toString('utf8');
}

/** UTF-8 byte length of the body. */
export function bodyBytes(r: LogRecord): number {
  return typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.length;
}

/** Docker's timestamp as bigint nanoseconds (JSON / NDJSON output). */
export function timeUnixNano(r: LogRecord): bigint {
  return BigInt(r.timeSec) * 1_000_000_000n + BigInt(r.timeNanos);
}
