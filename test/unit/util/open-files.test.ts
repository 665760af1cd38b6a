import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AGENT_RESERVED_FILES,
  FALLBACK_FILE_BUDGET,
  LOG_FILES_PER_CONTAINER,
  cgroupFileBudget,
  softOpenFilesLimit,
} from '../../../src/util/open-files.js';

describe('cgroupFileBudget', () => {
  it('is the soft limit minus the agent, the HTTP connection cap and two log files per container', () => {
    // this project's CI machine: 20,000 descriptors, default http.max_connections, 1,000 containers
    expect(cgroupFileBudget({ softLimit: 20_000, httpConnections: 128, containers: 1000 })).toBe(
      20_000 - 256 - 128 - 2 * 1000,
    );
    expect(AGENT_RESERVED_FILES).toBe(256);
    expect(LOG_FILES_PER_CONTAINER).toBe(2);
    // Docker's usual limit
    expect(cgroupFileBudget({ softLimit: 1_048_576, httpConnections: 128, containers: 5000 })).toBe(
      1_048_576 - 256 - 128 - 10_000,
    );
  });

  it('fits 1,000 containers of 16 cgroup files and one net/dev file each under a 20,000 limit', () => {
    const budget = cgroupFileBudget({ softLimit: 20_000, httpConnections: 128, containers: 1000 });
    expect(budget).toBeGreaterThanOrEqual(1000 * (16 + 1));
  });

  it('shrinks as containers and HTTP connections are added, never below 0', () => {
    const base = { softLimit: 4096, httpConnections: 128, containers: 0 };
    const b0 = cgroupFileBudget(base);
    expect(cgroupFileBudget({ ...base, containers: 10 })).toBe(b0 - 20);
    expect(cgroupFileBudget({ ...base, httpConnections: 1128 })).toBe(b0 - 1000);
    expect(cgroupFileBudget({ softLimit: 1024, httpConnections: 128, containers: 1000 })).toBe(0);
    expect(cgroupFileBudget({ ...base, containers: -5, httpConnections: -1 })).toBe(4096 - 256);
  });

  it('falls back to a small fixed budget when the limit is unknown', () => {
    expect(cgroupFileBudget({ softLimit: undefined, httpConnections: 128, containers: 9 })).toBe(
      FALLBACK_FILE_BUDGET,
    );
  });
});

describe('softOpenFilesLimit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hm-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const limits = (soft: string, hard: string): string => {
    const f = join(dir, `limits-${soft}-${hard}`);
    writeFileSync(
      f,
      [
        'Limit                     Soft Limit           Hard Limit           Units     ',
        'Max processes             95925                95925                processes ',
        `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
        'Max locked memory         8388608              8388608              bytes     ',
        '',
      ].join('\n'),
    );
    return f;
  };

  it('reads the soft limit, not the hard one', () => {
    expect(softOpenFilesLimit(limits('1024', '524288'))).toBe(1024);
    expect(softOpenFilesLimit(limits('unlimited', 'unlimited'))).toBe(1 << 20);
  });

  it('is undefined when the file is missing or has no such line', () => {
    expect(softOpenFilesLimit(join(dir, 'missing'))).toBeUndefined();
    const f = join(dir, 'empty');
    writeFileSync(f, 'Limit Soft Hard\n');
    expect(softOpenFilesLimit(f)).toBeUndefined();
  });

  it('sees the hard limit as the soft one in a Node.js process started with a low soft limit', () => {
    // Node.js raises the soft RLIMIT_NOFILE to the hard one at start: the budget can count on it
    const out = execFileSync(
      'prlimit',
      [
        '--nofile=1024:4096',
        process.execPath,
        '--input-type=module',
        '-e',
        `import { readFileSync } from 'node:fs'; process.stdout.write(/^Max open files\\s+(\\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'))[1]);`,
      ],
      { encoding: 'utf8' },
    );
    expect(Number(out)).toBe(4096);
  });
});
