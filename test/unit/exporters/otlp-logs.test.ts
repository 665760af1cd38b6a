// The OTLP/HTTP logs transport against a real HTTP server on loopback: a 2xx with an OTLP
// partial success reports the rejected count (the pipeline drops and counts those records);
// the encoder is shared by any transport.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OtlpHttpTransport,
  OtlpLogsExporter,
  PROTOBUF_ENCODING,
  parsePartialSuccess,
  type LogsTransport,
} from '../../../src/exporters/otlp-logs.js';
import { newRecord } from '../../../src/logs/record.js';
import type { ExportResult } from '../../../src/logs/types.js';

// ExportLogsServiceResponse { partial_success { rejected_log_records: 3, error_message: "bad" } }
const PARTIAL = Buffer.from([0x0a, 0x07, 0x08, 0x03, 0x12, 0x03, 0x62, 0x61, 0x64]);

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(answer: Buffer): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(answer),
    );
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
}

const rec = newRecord({ key: 'c', attributes: {} }, 'stdout', Buffer.from('x'), 1, 0, 0, undefined);

describe('OTLP logs exporter', () => {
  it('reads an OTLP partial success from a 2xx answer', async () => {
    const url = await serve(PARTIAL);
    const t = new OtlpHttpTransport({ url, headers: {}, compression: 'none', timeoutMs: 5000 });
    const res = await new OtlpLogsExporter({ encoding: PROTOBUF_ENCODING, transport: t }).export(
      [rec],
      new AbortController().signal,
    );
    expect(res).toEqual({ status: 'success', rejected: 3, message: 'bad' });
    await t.shutdown?.();
  });

  it('an empty answer is a plain success; garbage is not mistaken for a partial success', async () => {
    expect(parsePartialSuccess(Buffer.alloc(0))).toBeUndefined();
    expect(parsePartialSuccess(Buffer.from([0x0a, 0x09, 0x08]))).toBeUndefined();
    const url = await serve(Buffer.alloc(0));
    const e = new OtlpLogsExporter({
      url,
      protocol: 'http/protobuf',
      headers: {},
      compression: 'gzip',
      timeoutMs: 5000,
    });
    expect(await e.export([rec], new AbortController().signal)).toEqual({ status: 'success' });
    await e.shutdown();
  });

  it('another transport gets the same encoded bytes (the seam for OTLP/gRPC)', async () => {
    const sent: { body: Buffer; type: string }[] = [];
    const transport: LogsTransport = {
      name: 'capture',
      send: (body, type): Promise<ExportResult> => {
        sent.push({ body, type });
        return Promise.resolve({ status: 'success' });
      },
    };
    await new OtlpLogsExporter({ encoding: PROTOBUF_ENCODING, transport }).export(
      [rec],
      new AbortController().signal,
    );
    expect(sent).toHaveLength(1);
    expect(sent[0]!.type).toBe('application/x-protobuf');
    expect(sent[0]!.body.equals(PROTOBUF_ENCODING.encode([rec]))).toBe(true);
  });

  it('reuses its request buffer only once the transport released it, also after a send that failed before starting', async () => {
    const sent: { buffer: ArrayBufferLike; copy: Buffer }[] = [];
    let mode: 'hold' | 'release' | 'reject' = 'hold';
    let held: (() => void) | undefined;
    const transport: LogsTransport = {
      name: 'capture',
      send: (body, _type, _signal, released): Promise<ExportResult> => {
        sent.push({ buffer: body.buffer, copy: Buffer.from(body) });
        if (mode === 'reject') return Promise.reject(new Error('bad header value'));
        if (mode === 'hold') held ??= released;
        else released?.();
        return Promise.resolve({ status: 'success' });
      },
    };
    const e = new OtlpLogsExporter({ encoding: PROTOBUF_ENCODING, transport });
    const signal = new AbortController().signal;
    const want = PROTOBUF_ENCODING.encode([rec]);
    await e.export([rec], signal); // takes the buffer, not released yet
    await e.export([rec], signal); // so this one gets a new one
    expect(sent[1]!.buffer).not.toBe(sent[0]!.buffer);
    held?.();
    mode = 'reject';
    await expect(e.export([rec], signal)).rejects.toThrow('bad header value');
    expect(sent[2]!.buffer).toBe(sent[0]!.buffer); // released: reused
    mode = 'release';
    await e.export([rec], signal);
    expect(sent[3]!.buffer).toBe(sent[0]!.buffer); // the rejected send gave it back
    for (const x of sent) expect(x.copy.equals(want)).toBe(true);
  });
});
