import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpSignalSettings } from '../../../src/exporters/otlp-env.js';
import {
  OtlpGrpcLogsTransport,
  decodeLogsPartialSuccess,
} from '../../../src/exporters/otlp-grpc-logs.js';
import {
  fieldBytes,
  partialSuccessResponse,
  startOtlpGrpcReceiver,
  type OtlpGrpcReceiver,
} from '../../support/otlp-grpc-receiver.js';
import { allLogRecords, anyValue } from '../../support/otlp-receiver.js';
import { makeTestPki, type TestPki } from '../../support/tls.js';

/** ExportLogsServiceRequest{resource_logs{scope_logs{log_records{body{string_value}}}}} */
function encodeLines(lines: string[]): Buffer {
  const records = lines.map((l) => fieldBytes(2, fieldBytes(5, fieldBytes(1, l))));
  return fieldBytes(1, fieldBytes(2, Buffer.concat(records)));
}

function settings(url: string, over: Partial<OtlpSignalSettings> = {}): OtlpSignalSettings {
  return {
    signal: 'logs',
    url,
    protocol: 'grpc',
    headers: {},
    timeoutMs: 5000,
    compression: 'gzip',
    secure: url.startsWith('https:'),
    tls: {},
    warnings: [],
    ...over,
  };
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});
function transport(s: OtlpSignalSettings): OtlpGrpcLogsTransport {
  const t = new OtlpGrpcLogsTransport(s);
  open.push(t);
  return t;
}
async function receiver(o: Parameters<typeof startOtlpGrpcReceiver>[0] = {}) {
  const r = await startOtlpGrpcReceiver(o);
  open.push(r);
  return r;
}

describe('OtlpGrpcLogsTransport (plaintext)', () => {
  it('delivers the encoded request with its headers as metadata', async () => {
    const rx = await receiver();
    const t = transport(settings(rx.url, { headers: { Authorization: 'Bearer t0k' } }));
    await expect(t.send(encodeLines(['one', 'two']))).resolves.toEqual({ status: 'success' });
    expect(allLogRecords(rx.logs()).map((r) => anyValue(r.body))).toEqual(['one', 'two']);
    expect(rx.calls()[0]?.metadata.authorization).toBe('Bearer t0k');
  });

  it.each([
    ['UNAVAILABLE', GrpcStatus.UNAVAILABLE],
    ['ABORTED', GrpcStatus.ABORTED],
    ['DEADLINE_EXCEEDED', GrpcStatus.DEADLINE_EXCEEDED],
    ['RESOURCE_EXHAUSTED', GrpcStatus.RESOURCE_EXHAUSTED],
  ])('answers %s as retryable, naming the status', async (name, code) => {
    const rx = await receiver({ behaviour: { code, details: 'busy' } });
    const r = await transport(settings(rx.url)).send(encodeLines(['x']));
    expect(r.status).toBe('retryable');
    if (r.status !== 'success') expect(r.error.message).toBe(`gRPC ${name}: busy`);
    expect(r).not.toHaveProperty('retryAfterMs');
    expect(rx.logs()).toEqual([]);
  });

  it('honours RetryInfo on RESOURCE_EXHAUSTED', async () => {
    const rx = await receiver({
      behaviour: { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'slow down', retryDelayMs: 2750 },
    });
    const r = await transport(settings(rx.url)).send(encodeLines(['x']));
    expect(r).toMatchObject({ status: 'retryable', retryAfterMs: 2750 });
  });

  it.each([
    ['INVALID_ARGUMENT', GrpcStatus.INVALID_ARGUMENT],
    ['UNAUTHENTICATED', GrpcStatus.UNAUTHENTICATED],
    ['PERMISSION_DENIED', GrpcStatus.PERMISSION_DENIED],
    ['UNIMPLEMENTED', GrpcStatus.UNIMPLEMENTED],
  ])('answers %s as a permanent failure', async (name, code) => {
    const rx = await receiver({ behaviour: { code, details: 'no' } });
    const r = await transport(settings(rx.url)).send(encodeLines(['x']));
    expect(r.status).toBe('failure');
    if (r.status !== 'success') expect(r.error.message).toContain(name);
  });

  it('reports a partial success with the number rejected and the message', async () => {
    const rx = await receiver({
      behaviour: { code: 0, partialSuccess: { rejected: 3, message: 'too old' } },
    });
    const r = await transport(settings(rx.url)).send(encodeLines(['a', 'b', 'c', 'd']));
    expect(r).toEqual({
      status: 'success',
      partialSuccess: { rejectedLogRecords: 3, errorMessage: 'too old' },
    });
  });

  it('is retryable when nothing listens, and delivers once the receiver is up', async () => {
    const rx = await receiver();
    const url = rx.url;
    const port = rx.port;
    await rx.close();
    const t = transport(settings(url, { timeoutMs: 2000 }));
    const down = await t.send(encodeLines(['early']));
    expect(down.status).toBe('retryable');
    const back = await receiver({ port });
    let r = await t.send(encodeLines(['late']));
    for (let i = 0; i < 40 && r.status !== 'success'; i++) {
      await new Promise((res) => setTimeout(res, 250));
      r = await t.send(encodeLines(['late']));
    }
    expect(r.status).toBe('success');
    expect(allLogRecords(back.logs()).map((x) => anyValue(x.body))).toContain('late');
  });

  it('gives up at the timeout with a retryable DEADLINE_EXCEEDED', async () => {
    const rx = await receiver({ behaviour: { code: 0, delayMs: 2000 } });
    const r = await transport(settings(rx.url, { timeoutMs: 300 })).send(encodeLines(['x']));
    expect(r.status).toBe('retryable');
    if (r.status !== 'success') expect(r.error.message).toContain('DEADLINE_EXCEEDED');
  });

  it('ends a call when the abort signal fires (retryable: nothing was acknowledged)', async () => {
    const rx = await receiver({ behaviour: { code: 0, delayMs: 3000 } });
    const ac = new AbortController();
    const p = transport(settings(rx.url)).send(encodeLines(['x']), ac.signal);
    setTimeout(() => ac.abort(), 100);
    const r = await p;
    expect(r.status).toBe('retryable');
  });

  it('refuses a non-grpc protocol at construction', () => {
    expect(
      () =>
        new OtlpGrpcLogsTransport(settings('http://127.0.0.1:1', { protocol: 'http/protobuf' })),
    ).toThrow(/needs protocol grpc/);
  });
});

describe('OtlpGrpcLogsTransport (TLS)', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki(); // removed after this file (test/support/tmp.ts)
  });

  async function tlsReceiver(requireClientCert: boolean): Promise<OtlpGrpcReceiver> {
    return receiver({
      tls: {
        key: pki.read('serverKey'),
        cert: pki.read('serverCert'),
        ca: pki.read('ca'),
        requireClientCert,
      },
    });
  }

  it('delivers to a receiver with a private-CA certificate when given the CA', async () => {
    const rx = await tlsReceiver(false);
    const ok = await transport(settings(rx.url, { tls: { ca: pki.read('ca') } })).send(
      encodeLines(['tls']),
    );
    expect(ok).toEqual({ status: 'success' });
    const untrusted = await transport(
      settings(rx.url, { tls: { ca: pki.read('otherCa') }, timeoutMs: 2000 }),
    ).send(encodeLines(['x']));
    expect(untrusted.status).toBe('retryable');
    expect(allLogRecords(rx.logs())).toHaveLength(1);
  });

  it('delivers with a client certificate when the receiver requires one, not without', async () => {
    const rx = await tlsReceiver(true);
    const withPair = await transport(
      settings(rx.url, {
        tls: { ca: pki.read('ca'), key: pki.read('clientKey'), cert: pki.read('clientCert') },
      }),
    ).send(encodeLines(['mtls']));
    expect(withPair).toEqual({ status: 'success' });
    const without = await transport(
      settings(rx.url, { tls: { ca: pki.read('ca') }, timeoutMs: 2000 }),
    ).send(encodeLines(['x']));
    expect(without.status).not.toBe('success');
    const wrongCa = await transport(
      settings(rx.url, {
        tls: {
          ca: pki.read('ca'),
          key: pki.read('otherClientKey'),
          cert: pki.read('otherClientCert'),
        },
        timeoutMs: 2000,
      }),
    ).send(encodeLines(['x']));
    expect(wrongCa.status).not.toBe('success');
    expect(allLogRecords(rx.logs()).map((r) => anyValue(r.body))).toEqual(['mtls']);
  });
});

describe('decodeLogsPartialSuccess', () => {
  it('reads rejected_log_records and error_message, and ignores empty or broken bodies', () => {
    expect(decodeLogsPartialSuccess(partialSuccessResponse(7, 'bad'))).toEqual({
      rejectedLogRecords: 7,
      errorMessage: 'bad',
    });
    expect(decodeLogsPartialSuccess(Buffer.alloc(0))).toBeUndefined();
    expect(decodeLogsPartialSuccess(partialSuccessResponse(0, ''))).toBeUndefined();
    expect(decodeLogsPartialSuccess(Buffer.from([0x0a, 0xff, 0x01]))).toBeUndefined();
  });
});
