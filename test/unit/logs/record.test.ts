// Issue 11 acceptance 3: a record's fields are set in one place each. The table in types.ts
// (RECORD_FIELDS) names the owner of every field of the one record shape; log.iostream is the
// source's stream, set once at birth: a parsed field of that name cannot change it, and the
// encoders write it exactly once.
import { describe, expect, it } from 'vitest';
import { encodeLogsRequest } from '../../../src/exporters/otlp-logs-encode.js';
import { toNdjsonLine } from '../../../src/exporters/ndjson.js';
import { defaultProcessingConfig, LogProcessor } from '../../../src/logs/processing/index.js';
import { newRecord } from '../../../src/logs/record.js';
import { RECORD_FIELDS, type LogRecord } from '../../../src/logs/types.js';
import {
  allLogRecords,
  decodeOtlp,
  type ExportLogsServiceRequest,
} from '../../support/otlp-receiver.js';

const resource = { key: 'c', attributes: { 'container.name': 'web' } };

describe('record fields', () => {
  it('the field table names an owner for exactly the fields a record is born with', () => {
    const r = newRecord(resource, 'stdout', Buffer.from('x'), 1, 2, 3, undefined);
    expect(Object.keys(r).sort()).toEqual(Object.keys(RECORD_FIELDS).sort());
    for (const owner of Object.values(RECORD_FIELDS))
      expect(owner).toMatch(/^(source|parse|multiline)/);
  });

  it('log.iostream is set once, by the source: a parsed "log.iostream" field is dropped and counted, the encoders write the stream once', () => {
    const out: LogRecord[] = [];
    const proc = new LogProcessor(defaultProcessingConfig()).forContainer(
      {},
      { emit: (r) => out.push(r) },
    );
    proc.push(
      newRecord(
        resource,
        'stderr',
        Buffer.from('{"msg":"m","log.iostream":"stdout","k":1}'),
        1,
        0,
        0,
        undefined,
      ),
    );
    expect(out).toHaveLength(1);
    const r = out[0]!;
    expect(r.stream).toBe('stderr');
    expect(r.attributes).toEqual({ k: 1 });
    expect(r.droppedAttributesCount).toBe(1);
    const decoded = decodeOtlp(
      'logs',
      encodeLogsRequest(out),
      'application/x-protobuf',
    ) as ExportLogsServiceRequest;
    const [l] = allLogRecords([decoded]);
    const iostream = l!.attributes.filter((a) => a.key === 'log.iostream');
    expect(iostream).toHaveLength(1);
    expect(iostream[0]!.value).toEqual({ stringValue: 'stderr' });
    const nd = JSON.parse(toNdjsonLine(r)) as { attributes: Record<string, unknown> };
    expect(nd.attributes).toEqual({ k: 1, 'log.iostream': 'stderr' });
  });
});
