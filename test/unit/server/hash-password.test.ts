import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../../src/cli.ts', import.meta.url));
const run = (args: string[], input: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { input, encoding: 'utf8' });

describe('harbormaster hash-password', () => {
  it('prints a bcrypt hash of the password read from stdin that verifies it', () => {
    const r = run(['hash-password', '--cost', '5'], 'correct horse\n');
    expect(r.status).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^\$2[aby]\$05\$/);
    expect(bcrypt.compareSync('correct horse', hash)).toBe(true);
    expect(bcrypt.compareSync('correct horse\n', hash)).toBe(false);
  });

  it('refuses an empty password and a bad cost with a message', () => {
    const empty = run(['hash-password'], '');
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/password is empty/);
    const cost = run(['hash-password', '--cost', '99'], 'x\n');
    expect(cost.status).toBe(2);
    expect(cost.stderr).toMatch(/--cost must be an integer from 4 to 31, got 99/);
  });
});
