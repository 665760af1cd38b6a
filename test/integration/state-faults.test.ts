// Issue 16, criterion 7: each state-dir fault (read-only with a corrupt checkpoint file, full,
// the state path a regular file, the checkpoint path a directory). The agent starts, /metrics
// serves, log shipping goes on, /healthz names the fault and the path, a warning names the path,
// failed checkpoint writes are counted; once the fault is fixed the checkpoint file is written
// again and /healthz clears, without a restart. Faults are real: tmpfs mounts (read-only, full).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const CHECKPOINTS = 'log-checkpoints.json';

interface Fault {
  name: string;
  /** Breaks the state dir at `state` (inside the scratch dir `root`). */
  make(state: string, root: string): void;
  /** What /healthz and the warning say about it (besides the path). */
  says: RegExp;
  /** The checkpoint file's path the messages name. */
  file(state: string): string;
  fix(state: string): void;
}

const mounts: string[] = [];
function mount(args: string[], target: string): void {
  execFileSync('mount', [...args, target]);
  if (!mounts.includes(target)) mounts.push(target);
}

const FAULTS: Fault[] = [
  {
    name: 'read-only, with a corrupt checkpoint file',
    make(state) {
      mkdirSync(state);
      mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs'], state);
      writeFileSync(path.join(state, CHECKPOINTS), '{"version":2,"files":{"x":');
      execFileSync('mount', ['-o', 'remount,ro', state]);
    },
    says: /cannot be set aside \(EROFS\)|EROFS/,
    file: (s) => path.join(s, CHECKPOINTS),
    fix: (state) => execFileSync('mount', ['-o', 'remount,rw', state]),
  },
  {
    name: 'full (a small tmpfs)',
    make(state) {
      mkdirSync(state);
      mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], state);
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${path.join(state, 'filler')}`, 'bs=4k'], {
          stdio: 'ignore',
        });
      } catch {
        // dd stops with "No space left on device": that is the point
      }
    },
    says: /ENOSPC/,
    file: (s) => path.join(s, CHECKPOINTS),
    fix: (state) => rmSync(path.join(state, 'filler')),
  },
  {
    name: 'the state path is a regular file',
    make(state) {
      writeFileSync(state, 'not a directory\n');
    },
    says: /ENOTDIR|EEXIST/,
    file: (s) => path.join(s, CHECKPOINTS),
    fix: (state) => rmSync(state),
  },
  {
    name: 'the checkpoint path is a directory',
    make(state) {
      mkdirSync(path.join(state, CHECKPOINTS, 'inside'), { recursive: true });
    },
    says: /EISDIR/,
    file: (s) => path.join(s, CHECKPOINTS),
    fix: (state) => rmSync(path.join(state, CHECKPOINTS), { recursive: true }),
  },
];

function counter(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function logsHealth(a: AgentProcess): Promise<string> {
  const r = await a.get('/healthz');
  const body = JSON.parse(r.text) as { components: Record<string, { detail?: string }> };
  return body.components.logs?.detail ?? '';
}

describeDocker('state dir faults degrade log shipping, never stop the agent (issue 16, 7)', () => {
  let agent: AgentProcess | undefined;
  let container = '';
  let root = '';
  afterEach(async () => {
    await agent?.kill().catch(() => undefined);
    agent = undefined;
    if (container) await getDocker().docker(['rm', '-f', container]);
    container = '';
    for (const m of mounts.splice(0).reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {
        // already unmounted
      }
    }
    if (root) await rm(root, { recursive: true, force: true });
  });

  it.each(FAULTS)('$name', async (fault) => {
    root = await mkdtemp(path.join(os.tmpdir(), 'hm-state-fault-'));
    const state = path.join(root, 'state');
    const out = path.join(root, 'logs.ndjson');
    const file = fault.file(state);
    fault.make(state, root);
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      stateDir: state,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        HARBORMASTER_LOGS_EXPORTER: 'ndjson',
        HARBORMASTER_LOGS_NDJSON_PATH: out,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
      },
    });
    const a = agent;
    // The agent started and serves metrics.
    const m0 = await a.get('/metrics');
    expect(m0.status).toBe(200);
    expect(m0.text).toMatch(/^harbormaster_log_checkpoint_write_failures_total /m);

    const marker = uniqueName('fault-line');
    container = (
      await runContainer([
        '-d',
        '--stop-timeout',
        '1',
        TEST_IMAGE,
        'sh',
        '-c',
        `i=0; while true; do echo ${marker} $i; i=$((i+1)); sleep 0.2; done`,
      ])
    ).stdout.trim();

    // Log shipping goes on: lines arrive at the exporter.
    await waitFor(
      () => existsSync(out) && readFileSync(out, 'utf8').includes(`${marker} 3`),
      30_000,
      100,
      'lines shipped despite the fault',
    );
    // /healthz names the fault and the path; checkpoint writes fail and are counted.
    const detail = await waitFor(
      async () => {
        const d = await logsHealth(a);
        return d.includes('not persisted') && d.includes(file) && fault.says.test(d)
          ? d
          : undefined;
      },
      20_000,
      100,
      `/healthz naming the fault with ${file}`,
    );
    expect((await a.get('/healthz')).status).toBe(200);
    await waitFor(
      async () =>
        counter(
          (await a.get('/metrics')).text,
          'harbormaster_log_checkpoint_write_failures_total',
        ) > 0,
      20_000,
      100,
      'a counted checkpoint write failure',
    );
    // A warning names the path.
    const warned = a
      .logs()
      .filter((l) => Number(l.level) >= 40 && JSON.stringify(l).includes(file));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    console.log(`${fault.name}: ${detail}`);

    // Fixed: recovery without a restart.
    fault.fix(state);
    await waitFor(
      async () => !(await logsHealth(a)).includes('not persisted'),
      30_000,
      200,
      '/healthz to clear after the fix',
    );
    const saved = await waitFor(
      () => {
        try {
          const j = JSON.parse(readFileSync(file, 'utf8')) as {
            version: number;
            files: Record<string, { offset: number }>;
          };
          return (j.files[container]?.offset ?? 0) > 0 ? j : undefined;
        } catch {
          return undefined;
        }
      },
      20_000,
      100,
      'the checkpoint file to be written with the container',
    );
    expect(saved.version).toBe(2);
    expect(a.exit).toBeUndefined();
    const before = readFileSync(out, 'utf8').split('\n').length;
    await waitFor(
      () => readFileSync(out, 'utf8').split('\n').length > before + 2,
      20_000,
      100,
      'shipping to go on after the fix',
    );
    await a.stop();
    agent = undefined;
  });
});
