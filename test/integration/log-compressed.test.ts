// Issue 16, criterion 6: json-file with `--log-opt compress=true`. The agent ships the first
// lines and is stopped; meanwhile the container writes enough for three rotations, so the file
// the checkpoint points into and the next ones are compressed by Docker. After the restart every
// line Docker still keeps is delivered (the rest of the checkpointed generation from its `.gz`,
// then the newer ones), and nothing is counted as rotated away.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
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

const FIRST = 1000;
const TOTAL = 5000;

function shippedLines(file: string): Map<number, number> {
  const seen = new Map<number, number>();
  if (!existsSync(file)) return seen;
  for (const m of readFileSync(file, 'utf8').matchAll(/gz-line-(\d+)/g)) {
    const n = Number(m[1]);
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }
  return seen;
}

describeDocker('compressed rotations while the agent is stopped (issue 16, criterion 6)', () => {
  let agent: AgentProcess | undefined;
  let root = '';
  afterAll(async () => {
    await agent?.kill().catch(() => undefined);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('delivers every line Docker still keeps, from the .gz generations too', async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'hm-gz-it-'));
    const stateDir = path.join(root, 'state');
    const out = path.join(root, 'logs.ndjson');
    const trigger = path.join(root, 'trigger');
    (await import('node:fs')).mkdirSync(trigger);
    const info = harness().docker;
    const start = (): Promise<AgentProcess> =>
      startAgent({
        dockerHost: getDocker().host,
        stateDir,
        args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: '',
          HARBORMASTER_LOGS_EXPORTER: 'ndjson',
          HARBORMASTER_LOGS_NDJSON_PATH: out,
          HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
          HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
          HARBORMASTER_METRICS_ENABLED: 'false',
        },
      });
    agent = await start();
    const id = (
      await runContainer([
        '-d',
        '--name',
        uniqueName('gz'),
        '-v',
        `${trigger}:/t`,
        '--log-driver',
        'json-file',
        '--log-opt',
        'max-size=100k',
        '--log-opt',
        'max-file=8',
        '--log-opt',
        'compress=true',
        TEST_IMAGE,
        'sh',
        '-c',
        `seq 1 ${FIRST} | sed s/^/gz-line-/; while [ ! -e /t/go ]; do sleep 0.1; done; ` +
          `seq ${FIRST + 1} ${TOTAL} | sed s/^/gz-line-/; echo gz-done; sleep 600`,
      ])
    ).stdout.trim();
    const logPath = (await getDocker().dockerOk(['inspect', '-f', '{{.LogPath}}', id])).trim();
    await waitFor(() => shippedLines(out).size === FIRST, 30_000, 100, 'the first lines shipped');
    await agent.stop();
    agent = undefined;
    const cp = JSON.parse(readFileSync(path.join(stateDir, 'log-checkpoints.json'), 'utf8')) as {
      files: Record<string, { offset: number }>;
    };
    expect(cp.files[id]?.offset).toBeGreaterThan(0);

    // While the agent is away: three rotations, each rotated generation compressed.
    writeFileSync(path.join(trigger, 'go'), '');
    const dir = path.dirname(logPath);
    const base = path.basename(logPath);
    const gens = await waitFor(
      async () => {
        const done = (await getDocker().docker(['logs', '--tail', '1', id])).stdout.trim();
        const names = readdirSync(dir).filter((n) => n.startsWith(`${base}.`));
        const gz = names.filter((n) => n.endsWith('.gz'));
        // compression is asynchronous: done when no plain rotated generation is left
        return done === 'gz-done' && gz.length >= 2 && gz.length === names.length
          ? names
          : undefined;
      },
      60_000,
      200,
      'the container to write everything and Docker to compress two or more generations',
    );
    // Docker still keeps every line (nothing deleted: max-file is not reached).
    const kept = (await getDocker().dockerOk(['logs', id]))
      .split('\n')
      .filter((l) => l.startsWith('gz-line-')).length;
    expect(kept).toBe(TOTAL);

    agent = await start();
    const a = agent;
    await waitFor(
      () => shippedLines(out).size === TOTAL,
      60_000,
      200,
      `all ${TOTAL} lines shipped after the restart`,
    ).catch((e: unknown) => {
      console.log(`shipped ${shippedLines(out).size} of ${TOTAL}; generations ${gens.join(' ')}`);
      throw e;
    });
    const seen = shippedLines(out);
    for (let n = 1; n <= TOTAL; n++) expect(seen.has(n)).toBe(true);
    const dups = [...seen.values()].filter((c) => c > 1).length;
    console.log(`generations ${gens.join(' ')}; ${TOTAL} lines, ${dups} sent twice`);
    // at-least-once: only lines after the last checkpoint of the first run may come again
    expect(dups).toBeLessThanOrEqual(FIRST);
    const metrics = (await a.get('/metrics')).text;
    expect(metrics).toMatch(/^harbormaster_log_drops_total\{reason="rotated_away"\} 0$/m);
    await getDocker().docker(['rm', '-f', id]);
    await a.stop();
    agent = undefined;
  });
});
