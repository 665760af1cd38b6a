// The grabber thread opens each new generation of a log file; the main thread (a tailer) owns and
// closes the descriptor. Run in a child process of its own, so its stderr is what an operator
// would read on the agent's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const GRABBER = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../src/logs/grabber.ts',
);
const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-grabber-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a scenario script in a child process; its stderr and the JSON of its last stdout line. */
function runScenario(name: string, source: string): { stderr: string; out: unknown } {
  const script = path.join(dir, name);
  writeFileSync(script, source);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return { stderr: r.stderr, out: JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') };
}

it('descriptors opened on the grabber thread and closed by the main thread: no warning, each generation grabbed', () => {
  // 30 generations, Docker's max-file=1 way: delete, create, write; the main thread closes each
  // descriptor it gets, so the kernel hands the same numbers out again
  const { stderr, out } = runScenario(
    'scenario.mts',
    `import { closeSync, rmSync, writeFileSync } from 'node:fs';
import { watchForGrabs } from ${JSON.stringify(GRABBER)};
const file = ${JSON.stringify(path.join(dir, 'c-json.log'))};
const inodes = new Set<number>();
const stop = watchForGrabs(file, (g) => {
  inodes.add(g.ino);
  closeSync(g.fd);
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleep(200);
for (let i = 0; i < 30; i++) {
  rmSync(file, { force: true });
  writeFileSync(file, 'generation ' + i + '\\n');
  await sleep(30);
}
await sleep(300);
stop();
console.log(JSON.stringify({ grabbed: inodes.size }));
process.exit(0);
`,
  );
  expect(stderr).not.toMatch(/Warning/);
  // ext4 may hand a deleted file's inode to the next one: at least one, at most 30
  expect((out as { grabbed: number }).grabbed).toBeGreaterThan(0);
});

it('started before the first watch (as log shipping does): a generation made right after watching is grabbed', () => {
  // Docker's max-file=1 way again, but the first generation is made 20 ms after the watch is
  // asked for: the thread must already be running (booting one takes longer than that here).
  const { out } = runScenario(
    'early.mts',
    `import { closeSync, rmSync, writeFileSync } from 'node:fs';
import { startGrabber, watchForGrabs } from ${JSON.stringify(GRABBER)};
const file = ${JSON.stringify(path.join(dir, 'early-json.log'))};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const up = await startGrabber();
const again = await startGrabber();
const grabbed: string[] = [];
const stop = watchForGrabs(file, (g) => {
  grabbed.push(String(g.ino));
  closeSync(g.fd);
});
await sleep(20);
rmSync(file, { force: true });
writeFileSync(file, 'generation 0\\n');
await sleep(300);
stop();
console.log(JSON.stringify({ up, again, grabbed: grabbed.length }));
process.exit(0);
`,
  );
  expect(out).toEqual({ up: true, again: true, grabbed: 1 });
});
