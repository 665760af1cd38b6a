// Pure parts of the Engine API log reader: frame decoding across chunk boundaries, timestamps
// at nanosecond precision and the since= form.
import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  logSourceFor,
  parseDockerTimestamp,
  sinceParam,
} from '../../../../src/logs/api-reader.js';

function frame(stream: number, text: string): Buffer {
  const p = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}

describe('API log stream helpers', () => {
  it('decodes frames split at every byte boundary', () => {
    const all = Buffer.concat([frame(1, 'ts a\n'), frame(2, 'ts bb\n'), frame(1, 'ts c')]);
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new FrameDecoder(1 << 20);
      const got = [...d.push(all.subarray(0, cut)).frames, ...d.push(all.subarray(cut)).frames];
      expect(got.map((f) => [f.stream, f.payload.toString()])).toEqual([
        [1, 'ts a\n'],
        [2, 'ts bb\n'],
        [1, 'ts c'],
      ]);
    }
    expect(new FrameDecoder(1 << 20).push(Buffer.from('2024-01-01T00:00:00Z raw text')).bad).toBe(
      true,
    );
  });

  it('parses RFC 3339 nanosecond timestamps and renders since=', () => {
    const ns = parseDockerTimestamp('2026-11-27T19:15:22.598032862Z')!;
    expect(ns % 1_000_000_000n).toBe(598032862n);
    expect(Number(ns / 1_000_000n)).toBe(Date.parse('2026-11-27T19:15:22.598Z'));
    expect(parseDockerTimestamp('2026-11-27T19:15:22Z')! % 1_000_000_000n).toBe(0n);
    expect(parseDockerTimestamp('2026-11-27T20:15:22.5+01:00')).toBe(
      parseDockerTimestamp('2026-11-27T19:15:22.500000000Z'),
    );
    expect(parseDockerTimestamp('not a time')).toBeUndefined();
    expect(sinceParam(ns)).toBe(`${ns / 1_000_000_000n}.598032862`);
    expect(sinceParam(5_000_000_007n)).toBe('5.000000007');
  });

  it('chooses the API reader for local/journald drivers and remote daemons', () => {
    const sock = { socketPath: '/var/run/docker.sock' };
    expect(logSourceFor({ logDriver: 'json-file' }, sock)).toBe('file');
    expect(logSourceFor({ logDriver: 'local' }, sock)).toBe('api');
    expect(logSourceFor({ logDriver: 'journald' }, sock)).toBe('api');
    expect(logSourceFor({ logDriver: 'json-file' }, {})).toBe('api');
    expect(logSourceFor({ logDriver: 'none' }, sock)).toBe('none');
  });

  it('docker.log_source: a json-file container known only from its create (no LogPath yet) is neither tailed nor streamed', () => {
    const sock = { socketPath: '/var/run/docker.sock' };
    const tcp = {}; // e.g. tcp:// behind a socket proxy
    const created = { logDriver: 'json-file', logPath: '' };
    const started = { logDriver: 'json-file', logPath: '/var/lib/docker/containers/x/x-json.log' };
    // file: the file once the start gave it a path, never the API meanwhile (the start's
    // tailer would ship every line a second time)
    expect(logSourceFor(created, tcp, 'file')).toBe('none');
    expect(logSourceFor(started, tcp, 'file')).toBe('file');
    expect(logSourceFor(created, sock, 'auto')).toBe('none');
    expect(logSourceFor(started, sock, 'auto')).toBe('file');
    // remote in auto mode and api mode: the API, path or not
    expect(logSourceFor(created, tcp, 'auto')).toBe('api');
    expect(logSourceFor(started, sock, 'api')).toBe('api');
    // other drivers: the API in file mode too; none stays none
    expect(logSourceFor({ logDriver: 'journald', logPath: '' }, tcp, 'file')).toBe('api');
    expect(logSourceFor({ logDriver: 'none' }, sock, 'api')).toBe('none');
  });
});
