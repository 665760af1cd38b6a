// Read turns: however many tailers have data, at most READ_TURNS (two) read (and consume) at
// once, each waits its turn in order, and every line of every file arrives.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { READ_TURNS, Tailer, readTurns } from '../../../src/logs/tailer.js';

describe('tailer read turns', () => {
  it('40 tailers with data: at most two read at once, all lines of all files delivered', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-turns-'));
    const tailers: Tailer[] = [];
    try {
      const got = new Map<string, number>();
      const perFile = 3000;
      for (let f = 0; f < 40; f++) {
        let text = '';
        for (let i = 0; i < perFile; i++)
          text += `{"log":"file ${f} line ${i}\\n","stream":"stdout","time":"2023-11-14T22:13:20.5Z"}\n`;
        const file = path.join(dir, `c${f}-json.log`);
        writeFileSync(file, text);
        got.set(`c${f}`, 0);
        tailers.push(
          new Tailer({
            key: `c${f}`,
            path: file,
            resource: { key: `c${f}`, attributes: {} },
            sink: {
              waitForSpace: () => undefined,
              push: (r) => got.set(r.resource.key, got.get(r.resource.key)! + 1),
            },
            stats: { lines: () => {}, drop: () => {}, truncated: () => {}, warn: () => {} },
            startAt: 'beginning',
            maxLineBytes: 1 << 20,
            chunkBytes: 16 * 1024,
            partialFlushMs: 1e9,
            pollMs: 5,
            watch: false,
          }),
        );
      }
      let most = 0;
      let queued = 0;
      const sampler = setInterval(() => {
        const t = readTurns();
        most = Math.max(most, t.reading);
        queued = Math.max(queued, t.waiting);
      }, 0);
      for (const t of tailers) t.start();
      const end = Date.now() + 30_000;
      while ([...got.values()].some((n) => n < perFile) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 5));
      clearInterval(sampler);
      expect([...got.values()]).toEqual(Array.from({ length: 40 }, () => perFile));
      expect(READ_TURNS).toBe(2);
      expect(most).toBeLessThanOrEqual(READ_TURNS);
      expect(most).toBeGreaterThan(0);
      expect(queued).toBeGreaterThan(0); // tailers did wait for a turn
    } finally {
      await Promise.all(tailers.map((t) => t.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
    expect(readTurns()).toEqual({ reading: 0, waiting: 0 });
  });
});
