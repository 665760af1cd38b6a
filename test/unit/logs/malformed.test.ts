// Acceptance 7: malformed records are counted and skipped (or truncated); their neighbours arrive.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tailer } from '../../../src/logs/tailer.js';
import type { DropReason, LogRecord } from '../../../src/logs/types.js';
import { FakeDockerLog } from './fake-docker.js';

describe('malformed json-file records', () => {
  it('counts and skips broken JSON, binary junk and a 10 MB raw line; truncates a 10 MB logical line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-bad-'));
    const w = new FakeDockerLog(dir);
    const drops: DropReason[] = [];
    let truncated = 0;
    const got: LogRecord[] = [];
    w.write('stdout', 'before');
    w.raw('{"log":"broken\n');
    w.raw(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]));
    w.raw(
      Buffer.concat([
        Buffer.from('{"log":"bad utf8 '),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from(' end\\n","stream":"stderr","time":"2024-01-01T00:00:00.5Z"}\n'),
      ]),
    );
    w.raw(`${'z'.repeat(10 * 1024 * 1024)}\n`);
    // A 10 MB line as Docker writes it: 16 KiB partial records, then the end.
    const frag = 'a'.repeat(16 * 1024);
    for (let i = 0; i < 640; i++) w.write('stdout', frag, false);
    w.write('stdout', 'tail');
    w.write('stderr', 'after');
    const t = new Tailer({
      key: 'c',
      path: w.file,
      resource: { key: 'c', attributes: {} },
      sink: { waitForSpace: () => undefined, push: (r) => got.push(r) },
      stats: {
        lines: () => {},
        drop: (r) => drops.push(r),
        truncated: () => truncated++,
        warn: () => {},
      },
      startAt: 'beginning',
      maxLineBytes: 1024 * 1024,
      chunkBytes: 64 * 1024,
      partialFlushMs: 60_000,
      pollMs: 10,
      watch: false,
    });
    t.start();
    const end = Date.now() + 10_000;
    while (got.length < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
    const bodies = got.map((r) => (r.body.length > 100 ? `${r.body.length}` : r.body.toString()));
    expect(bodies).toEqual(['before', 'bad utf8 \ufffd(\ufffd end', String(1024 * 1024), 'after']);
    expect(got[2]!.attributes).toEqual({ 'harbormaster.log.truncated': true });
    expect(truncated).toBe(1);
    expect(drops.filter((d) => d === 'malformed_record')).toHaveLength(2);
    expect(drops.filter((d) => d === 'oversized_raw_line')).toHaveLength(1);
  });
});
