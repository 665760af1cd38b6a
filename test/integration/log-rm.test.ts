// Short `docker run --rm` containers: every line they print is delivered or counted. Docker
// deletes a removed container's log file right after it exits; the agent holds the file open from
// the container's start event (and from its tailer's start), so what it printed is read through
// the descriptor even when the file is already gone. A container removed before its start event
// reached the agent cannot be read: it must show up in file_removed_unread, one per run, and
// never as a partial run.
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
import {
  allLogRecords,
  attrs,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../support/otlp-receiver.js';

const RUNS = 100;
const CONCURRENCY = 6;
const LINES = 20;

describeDocker('docker run --rm: every line delivered or counted', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess | undefined;
  let stateDir: string;

  beforeAll(async () => {
    rx = await startOtlpReceiver();
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-logs-rm-'));
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      stateDir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
  });
  afterAll(async () => {
    await agent?.kill().catch(() => undefined);
    await rx?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it(`${RUNS} --rm containers printing ${LINES} numbered lines each (${CONCURRENCY} at once)`, async () => {
    const names: string[] = [];
    /** Lines each run printed to `docker run`'s own stdout (the attach stream, not the log file). */
    const printed = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < RUNS) {
        const name = uniqueName(`rm${next++}`);
        names.push(name);
        const r = await runContainer([
          '--rm',
          '--name',
          name,
          '--log-driver',
          'json-file',
          TEST_IMAGE,
          'sh',
          '-c',
          `seq 1 ${LINES}`,
        ]);
        printed.set(name, r.stdout.split('\n').filter(Boolean).length);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const lines = (): Map<string, Set<string>> => {
      const by = new Map<string, Set<string>>();
      for (const r of allLogRecords(rx.logs())) {
        const v = r.resource['container.name'];
        const name = typeof v === 'string' ? v : '';
        if (attrs(r.attributes)['log.iostream'] !== 'stdout') continue;
        let s = by.get(name);
        if (!s) by.set(name, (s = new Set()));
        s.add(r.body?.stringValue ?? '');
      }
      return by;
    };
    // A run is complete, or (when Docker removed it before its start event reached the agent)
    // has no line at all and is counted in file_removed_unread. Nothing partial, nothing silent.
    const dropsRemovedUnread = async (): Promise<number> =>
      Number(
        /harbormaster_log_drops_total\{reason="file_removed_unread"\} (\d+)/.exec(
          (await agent!.get('/metrics')).text,
        )?.[1] ?? NaN,
      );
    const settled = async (): Promise<boolean> => {
      const by = lines();
      const none = names.filter((n) => (by.get(n)?.size ?? 0) === 0).length;
      const partial = names.filter((n) => {
        const k = by.get(n)?.size ?? 0;
        return k > 0 && k < LINES;
      }).length;
      return partial === 0 && none === (await dropsRemovedUnread());
    };
    await waitFor(settled, 60_000, 250, 'every run delivered or counted').catch(
      async (err: unknown) => {
        const by = lines();
        const m = (await agent!.get('/metrics')).text;
        const missing = names.filter((n) => (by.get(n)?.size ?? 0) < LINES);
        console.log(
          `runs with lines missing: ${missing.length} of ${RUNS}: ` +
            missing
              .map(
                (n) =>
                  `${n} (#${names.indexOf(n)}, ${printed.get(n)} lines on docker run's stdout; ` +
                  `delivered: ${[...(by.get(n) ?? [])].join(',')})`,
              )
              .join('; ') +
            '\n' +
            m
              .split('\n')
              .filter((l) => l.startsWith('harbormaster_log_drops_total'))
              .join('\n'),
        );
        throw err;
      },
    );
    const by = lines();
    const complete = names.filter((n) => by.get(n)?.size === LINES);
    for (const n of complete) {
      expect([...by.get(n)!].sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: LINES }, (_, i) => String(i + 1)),
      );
    }
    const lost = RUNS - complete.length;
    console.log(
      `--rm runs: ${complete.length} of ${RUNS} delivered complete, ${lost} removed before the agent could open their log (counted)`,
    );
    expect(await dropsRemovedUnread()).toBe(lost);
    // most runs are read: the log is held from the start event (before: ~7 % lost)
    expect(complete.length).toBeGreaterThanOrEqual(RUNS * 0.8);
  }, 600_000);
});
