// Temporary directories for unit tests, removed after the test file that made them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory under the system temp dir, deleted when the importing test file ends. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `${prefix}-`));
  made.push(d);
  return d;
}
