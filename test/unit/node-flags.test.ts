// The agent's V8 flags (src/node-flags.ts) are passed wherever the agent is started as shipped:
// the image's ENTRYPOINT, scripts/run-local.sh and the integration-test harness.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../src/node-flags.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (f: string): string => readFileSync(path.join(root, f), 'utf8');

describe('the agent V8 flags', () => {
  it('are on the image ENTRYPOINT, before the script', () => {
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    const argv = JSON.parse(entry ?? '[]') as string[];
    expect(argv.slice(0, AGENT_NODE_FLAGS.length + 2)).toEqual([
      'node',
      ...AGENT_NODE_FLAGS,
      '/app/dist/src/cli.js',
    ]);
  });

  it('are on the node command line of scripts/run-local.sh', () => {
    expect(read('scripts/run-local.sh')).toContain(
      `exec node ${AGENT_NODE_FLAGS.join(' ')} dist/src/cli.js run`,
    );
  });

  it('are passed by the integration harness and the log benchmark', () => {
    expect(read('test/integration/harness/agent.ts')).toMatch(/\.\.\.AGENT_NODE_FLAGS,\s+cli,/);
    expect(read('bench/logs-throughput.ts')).toContain('...AGENT_NODE_FLAGS');
  });
});
