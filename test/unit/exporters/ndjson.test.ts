// The NDJSON exporter on the real filesystem: one JSON object per record with the OTLP fields,
// byte and text bodies alike; an unwritable path is a retryable failure naming it, not a crash.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NdjsonLogExporter } from '../../../src/exporters/ndjson.js';
import { newRecord } from '../../../src/logs/record.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const resource = {
  key: 'c1',
  attributes: { 'container.name': 'web', 'container.image.tags': ['1.2'] },
};

describe('NDJSON exporter', () => {
  it('appends one JSON object per record with time, body, log.iostream, resource and parsed fields', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-ndjson-'));
    dirs.push(dir);
    const file = path.join(dir, 'out.ndjson');
    const e = new NdjsonLogExporter(file);
    const a = newRecord(
      resource,
      'stderr',
      Buffer.from('héllo'),
      1_700_000_000,
      5,
      1_700_000_001_250,
      undefined,
    );
    const b = newRecord(
      resource,
      'stdout',
      'parsed message',
      1_700_000_002,
      0,
      1_700_000_003_000,
      undefined,
      {
        code: 7,
      },
    );
    b.severityNumber = 17;
    b.severityText = 'error';
    b.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(await e.export([a, b])).toEqual({ status: 'success' });
    expect(await e.export([a])).toEqual({ status: 'success' });
    await e.shutdown();
    const lines = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual({
      time_unix_nano: '1700000000000000005',
      observed_time_unix_nano: '1700000001250000000',
      body: 'héllo',
      attributes: { 'log.iostream': 'stderr' },
      resource: { 'container.name': 'web', 'container.image.tags': ['1.2'] },
    });
    expect(lines[1]).toMatchObject({
      body: 'parsed message',
      attributes: { code: 7, 'log.iostream': 'stdout' },
      severity_number: 17,
      severity_text: 'error',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(lines[2]).toEqual(lines[0]);
  });

  it('a path it cannot write is a retryable failure that names the path; it works once the path is fixed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-ndjson-'));
    dirs.push(dir);
    const file = path.join(dir, 'missing', 'out.ndjson');
    const e = new NdjsonLogExporter(file);
    const r = newRecord(resource, 'stdout', Buffer.from('x'), 1, 0, 0, undefined);
    const res = await e.export([r]);
    expect(res.status).toBe('retryable');
    expect(res.status === 'retryable' && res.error.message).toContain(file);
    mkdirSync(path.dirname(file));
    expect(await e.export([r])).toEqual({ status: 'success' });
    await e.shutdown();
    expect(readFileSync(file, 'utf8')).toContain('"body":"x"');
  });
});
