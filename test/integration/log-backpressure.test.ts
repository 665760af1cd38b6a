// Backpressure, black-box: with a small logs.queue_max_bytes and a receiver answering 503, the
// queue fills to its bound, the tailer stops reading (the backlog waits on disk as bytes behind),
// every 503 the receiver served is one counted retryable failure, and once the receiver accepts,
// every line arrives exactly once. Only /metrics and the receiver are observed, so the test holds
// across rewrites of the log pipeline.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
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
import { allLogRecords, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const QUEUE_MAX = 1024 * 1024;
const N = 100_000;
const PAD = 'x'.repeat(90);

function metric(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

describeDocker('log backpressure (small queue, receiver answering 503)', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess | undefined;
  let stateDir: string;

  beforeAll(async () => {
    rx = await startOtlpReceiver();
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-bp-state-'));
  });
  afterAll(async () => {
    await agent?.kill().catch(() => undefined);
    await rx?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  // Each test removes its container and clears the receiver when it ends (afterEach), so each
  // agent tails only the container of its own test and each test sees only its own requests, in
  // either order.
  const containers: string[] = [];
  afterEach(async () => {
    for (const c of containers.splice(0)) await getDocker().docker(['rm', '-f', c]);
    rx.reset();
  });

  it('drops and counts every record of a batch the receiver rejects with 400, once per record', async () => {
    rx.setStatus(400);
    const info = harness().docker;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm-bp-400-'));
    const a = await startAgent({
      dockerHost: getDocker().host,
      stateDir: dir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
    try {
      const M = 500;
      const c400 = (
        await runContainer([
          '-d',
          '--name',
          uniqueName('bp400'),
          TEST_IMAGE,
          'sh',
          '-c',
          `seq 1 ${M}; sleep 600`,
        ])
      ).stdout.trim();
      containers.push(c400);
      const rejected = (t: string) =>
        metric(t, /^harbormaster_log_drops_total\{reason="export_rejected"\} (\d+)$/m);
      await waitFor(
        async () => rejected((await a.get('/metrics')).text) === M,
        30_000,
        100,
        `export_rejected drops to reach ${M}`,
      );
      const served400 = rx.requestLog().filter((r) => r.path === '/v1/logs' && r.status === 400);
      expect(served400.length).toBeGreaterThanOrEqual(1);
      const t = (await a.get('/metrics')).text;
      // permanent: not retried, not exported
      expect(t).toMatch(/^harbormaster_log_records_exported_total 0$/m);
      expect(rx.logs()).toEqual([]);
      // a failure logged once, naming the counter
      const warned = a.logs().filter((l) => String(l.msg).includes('reason="export_rejected"'));
      expect(warned).toHaveLength(1);
    } finally {
      await a.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fills the queue to its bound, leaves the backlog on disk, counts every 503, then delivers every line once', async () => {
    rx.setStatus(503, { retryAfter: 1 });
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      stateDir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_QUEUE_MAX_BYTES: String(QUEUE_MAX),
        HARBORMASTER_LOGS_BATCH_MAX_BYTES: String(256 * 1024),
        // a tailer checks for space before each read: small reads keep the overshoot of the
        // bound to one read's records (default 256 KiB reads overshoot by ~600 KB of records)
        HARBORMASTER_LOGS_READ_CHUNK_BYTES: '4096',
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        HARBORMASTER_LOGS_RETRY_MAX_SECONDS: '1',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
    const a = agent;
    const name = uniqueName('bp');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-driver',
        'json-file',
        '--log-opt',
        'max-size=100m',
        TEST_IMAGE,
        'sh',
        '-c',
        `seq 1 ${N} | sed 's/$/ ${PAD}/'; sleep 600`,
      ])
    ).stdout.trim();
    containers.push(id);
    const logPath = (await getDocker().dockerOk(['inspect', '-f', '{{.LogPath}}', id])).trim();
    const text = async (): Promise<string> => (await a.get('/metrics')).text;
    const queueBytes = (t: string) => metric(t, /^harbormaster_log_queue_bytes (\d+)$/m);
    const behind = (t: string) =>
      metric(
        t,
        new RegExp(
          `^harbormaster_log_file_bytes_behind\\{container_name="${name}"\\} (\\d+)$`,
          'm',
        ),
      );
    const retryable = (t: string) =>
      metric(t, /^harbormaster_log_export_failures_total\{kind="retryable"\} (\d+)$/m) ?? 0;
    const served503 = (): number =>
      rx.requestLog().filter((r) => r.path === '/v1/logs' && r.status === 503).length;

    // the whole output is on disk
    await waitFor(
      async () =>
        (await getDocker().docker(['logs', '--tail', '1', id])).stdout.startsWith(`${N} `),
      60_000,
      200,
      'the container to write its lines',
    );
    const fileBytes = (await import('node:fs')).statSync(logPath).size;
    expect(fileBytes).toBeGreaterThan(10 * QUEUE_MAX);

    // Stalled: the queue holds about its bound, the agent has read only a little more than that
    // (the rest of the file waits on disk), 503s keep coming, and nothing more is read between
    // two further 503s. What was read comes from harbormaster_log_{bytes,lines}_read_total;
    // harbormaster_log_file_bytes_behind shows the rest of the file waiting (a paused tailer
    // still looks at the file every poll interval), and reaches 0 after the recovery below.
    const sum = (t: string, family: string): number => {
      let n = 0;
      const re = new RegExp(`^${family}\\{[^}]*container_name="${name}"[^}]*\\} (\\d+)$`, 'gm');
      for (const m of t.matchAll(re)) n += Number(m[1]);
      return n;
    };
    const bytesRead = (t: string) => sum(t, 'harbormaster_log_bytes_read_total');
    const linesRead = (t: string) => sum(t, 'harbormaster_log_lines_read_total');
    let seen = '';
    const stalled = await waitFor(
      async () => {
        const t = await text();
        const q = queueBytes(t) ?? 0;
        const read = bytesRead(t);
        seen = `queue ${q} B, read ${read} of ${fileBytes} B (gauge behind ${behind(t)}), ${served503()} × 503`;
        return q > 0 && read > 0 && read < 4 * QUEUE_MAX && served503() >= 3
          ? { q, read, lines: linesRead(t) }
          : undefined;
      },
      60_000,
      200,
      'the queue to fill and the tailer to stop',
    ).catch(async (err: unknown) => {
      console.log(
        seen,
        (await text())
          .split('\n')
          .filter((l) => l.startsWith('harbormaster_log'))
          .join('\n'),
      );
      throw err;
    });
    const n503 = served503();
    await waitFor(() => served503() >= n503 + 2, 30_000, 100, 'two more 503s');
    const t1 = await text();
    expect(bytesRead(t1)).toBe(stalled.read);
    expect(linesRead(t1)).toBe(stalled.lines);
    expect(linesRead(t1)).toBeLessThan(N / 4);
    expect(queueBytes(t1)).toBeGreaterThan(0);
    expect(queueBytes(t1)).toBeLessThanOrEqual(QUEUE_MAX + 64 * 1024);
    // what waits on disk: the file less what was read (within 5 %)
    await waitFor(
      async () => {
        const b = behind(await text()) ?? 0;
        return Math.abs(b - (fileBytes - stalled.read)) <= 0.05 * (fileBytes - stalled.read);
      },
      10_000,
      200,
      `harbormaster_log_file_bytes_behind to show the ${fileBytes - stalled.read} unread bytes`,
    );
    // nothing was accepted, nothing was exported
    expect(rx.logs()).toEqual([]);
    expect(t1).toMatch(/^harbormaster_log_records_exported_total 0$/m);
    // every 503 served is one retryable failure counted by the agent
    await waitFor(
      async () => retryable(await text()) === served503(),
      10_000,
      100,
      'retryable failures to equal the 503s served',
    );
    console.log(
      `stalled: queue ${queueBytes(t1)} B (bound ${QUEUE_MAX}), read ${bytesRead(t1)} of ${fileBytes} B (gauge behind ${behind(t1)}), ${served503()} × 503`,
    );

    // the receiver recovers: every line exactly once, nothing behind, the queue empty
    rx.setStatus(200);
    const bodies = (): string[] =>
      allLogRecords(rx.logs())
        .filter((r) => r.resource['container.id'] === id)
        .map((r) => r.body?.stringValue ?? '');
    await waitFor(() => new Set(bodies()).size >= N, 120_000, 250, `all ${N} lines`);
    const got = bodies();
    expect(got).toHaveLength(N);
    expect(got[0]).toBe(`1 ${PAD}`);
    expect(got[N - 1]).toBe(`${N} ${PAD}`);
    await waitFor(
      async () => {
        const t = await text();
        return (
          behind(t) === 0 &&
          queueBytes(t) === 0 &&
          linesRead(t) === N &&
          metric(t, /^harbormaster_log_records_exported_total (\d+)$/m) === N
        );
      },
      30_000,
      200,
      'nothing behind, an empty queue, N lines read and exported_total = N',
    );
    const end = await text();
    expect(end).not.toMatch(/^harbormaster_log_drops_total\{[^}]*\} [1-9]/m);
    expect(retryable(end)).toBe(served503());
    await a.stop();
    agent = undefined;
  });
});
