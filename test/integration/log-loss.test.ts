// Loss accounting against real json-file logs (issue 16). A live log truncated in place (an
// operator's `truncate -s 0` to free disk; the Docker here does not truncate with max-file=1, it
// lets the file grow) while the agent is paused on a full queue: counted as file_truncated, with
// the unread bytes it knew of in harbormaster_log_lost_bytes_total. A generation Docker deletes
// while the agent is stopped is counted as rotated_away on the restart.
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
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
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

function counter(text: string, re: RegExp): number {
  return Number(re.exec(text)?.[1] ?? NaN);
}

describeDocker('log loss accounting (issue 16)', () => {
  let rx: OtlpReceiver;
  const agents: AgentProcess[] = [];
  const ids: string[] = [];
  let root = '';
  beforeAll(async () => {
    rx = await startOtlpReceiver();
    root = await mkdtemp(path.join(os.tmpdir(), 'hm-loss-'));
  });
  afterAll(async () => {
    for (const a of agents) await a.kill().catch(() => undefined);
    if (ids.length) await getDocker().docker(['rm', '-f', ...ids]);
    await rx?.close();
    await rm(root, { recursive: true, force: true });
  });

  const start = async (stateDir: string, env: Record<string, string>): Promise<AgentProcess> => {
    const info = harness().docker;
    const a = await startAgent({
      dockerHost: getDocker().host,
      stateDir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        HARBORMASTER_LOGS_RETRY_MAX_SECONDS: '1',
        HARBORMASTER_METRICS_ENABLED: 'false',
        ...env,
      },
    });
    agents.push(a);
    return a;
  };

  it('a live log truncated in place while paused: file_truncated and lost bytes', async () => {
    rx.setStatus(503, { retryAfter: 1 });
    const a = await start(path.join(root, 's1'), {
      HARBORMASTER_LOGS_QUEUE_MAX_BYTES: String(256 * 1024),
      HARBORMASTER_LOGS_BATCH_MAX_BYTES: String(64 * 1024),
      HARBORMASTER_LOGS_READ_CHUNK_BYTES: '4096',
    });
    const id = (
      await runContainer([
        '-d',
        '--name',
        uniqueName('trunc'),
        TEST_IMAGE,
        'sh',
        '-c',
        `seq 1 40000 | sed 's/$/ ${'t'.repeat(60)}/'; sleep 600`,
      ])
    ).stdout.trim();
    ids.push(id);
    const logPath = (await getDocker().dockerOk(['inspect', '-f', '{{.LogPath}}', id])).trim();
    const drops = /^harbormaster_log_drops_total\{reason="file_truncated"\} (\d+)$/m;
    const lostRe = /^harbormaster_log_lost_bytes_total\{reason="file_truncated"\} (\d+)$/m;
    const behindRe = /^harbormaster_log_file_bytes_behind\{container_name="trunc-[^"]*"\} (\d+)$/m;
    const behind = async (): Promise<number> => counter((await a.get('/metrics')).text, behindRe);
    // the whole output on disk (a write after the truncation would start the file again), and
    // the agent paused on the full queue with megabytes unread
    await waitFor(
      async () =>
        (await getDocker().docker(['logs', '--tail', '1', id])).stdout.startsWith('40000 '),
      60_000,
      200,
      'the container to write its 40,000 lines',
    );
    await waitFor(async () => (await behind()) > 4 * 1024 * 1024, 60_000, 200, 'a backlog');
    const unread = await behind();
    truncateSync(logPath, 0);
    let seen = '';
    const t = await waitFor(
      async () => {
        const m = (await a.get('/metrics')).text;
        const [d, l, b] = [counter(m, drops), counter(m, lostRe), counter(m, behindRe)];
        seen = `drops ${d}, lost bytes ${l}, bytes behind ${b}`;
        return d === 1 && l > 0 && b === 0 ? m : undefined;
      },
      30_000,
      200,
      'a counted truncation with lost bytes and nothing behind',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last seen: ${seen}`);
    });
    const lost = counter(t, lostRe);
    console.log(`truncated with ${unread} B behind: ${lost} B counted lost`);
    // what it knew was unread, give or take one poll of growth
    expect(lost).toBeGreaterThanOrEqual(unread * 0.95);
    expect(lost).toBeLessThanOrEqual(statSync(logPath).size + unread * 1.05 + 1024 * 1024);
    const warned = a.logs().filter((l) => String(l.msg).includes('truncated'));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    await a.stop();
  });

  it('a generation deleted while the agent is stopped is counted as rotated_away', async () => {
    rx.setStatus(200);
    const stateDir = path.join(root, 's2');
    const a = await start(stateDir, {});
    const id = (
      await runContainer([
        '-d',
        '--name',
        uniqueName('deleted'),
        '-v',
        `${root}:/t`,
        '--log-opt',
        'max-size=50k',
        '--log-opt',
        'max-file=2',
        TEST_IMAGE,
        'sh',
        '-c',
        `echo first; while [ ! -e /t/go ]; do sleep 0.1; done; seq 1 5000; sleep 600`,
      ])
    ).stdout.trim();
    ids.push(id);
    await waitFor(
      () => {
        try {
          const j = JSON.parse(
            readFileSync(path.join(stateDir, 'log-checkpoints.json'), 'utf8'),
          ) as {
            files: Record<string, { offset: number }>;
          };
          return (j.files[id]?.offset ?? 0) > 0;
        } catch {
          return false;
        }
      },
      30_000,
      100,
      'the first line delivered and checkpointed',
    );
    await a.stop();
    (await import('node:fs')).writeFileSync(path.join(root, 'go'), '');
    await waitFor(
      async () => (await getDocker().docker(['logs', '--tail', '1', id])).stdout.trim() === '5000',
      30_000,
      100,
      'the container to write past two rotations',
    );
    const b = await start(stateDir, {});
    await waitFor(
      async () =>
        counter(
          (await b.get('/metrics')).text,
          /^harbormaster_log_drops_total\{reason="rotated_away"\} (\d+)$/m,
        ) === 1,
      30_000,
      100,
      'rotated_away counted once',
    );
    const msg = b.logs().find((l) => String(l.msg).includes('no longer exists'));
    expect(msg).toBeDefined();
    await b.stop();
  });
});
