// Short `docker run --rm` containers: every line they print is delivered. Docker deletes a removed
// container's log file right after it exits; the agent holds the file open from the container's
// start event (and from its tailer's start), so what it printed is read through the descriptor
// even when the file is already gone (before: ~7 % of such runs lost their lines, counted as
// file_removed_unread).
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

describeDocker('docker run --rm: every line delivered', () => {
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
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < RUNS) {
        const name = uniqueName(`rm${next++}`);
        names.push(name);
        await runContainer([
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
    const incomplete = (): string[] => {
      const by = lines();
      return names.filter((n) => (by.get(n)?.size ?? 0) < LINES);
    };
    await waitFor(() => incomplete().length === 0, 60_000, 250, 'every line of every run').catch(
      async (err: unknown) => {
        const m = (await agent!.get('/metrics')).text;
        console.log(
          `runs with lines missing: ${incomplete().length} of ${RUNS}\n` +
            m
              .split('\n')
              .filter((l) => l.startsWith('harbormaster_log_drops_total'))
              .join('\n'),
        );
        throw err;
      },
    );
    const by = lines();
    for (const n of names) {
      expect([...by.get(n)!].sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: LINES }, (_, i) => String(i + 1)),
      );
    }
    const m = (await agent!.get('/metrics')).text;
    expect(m).toMatch(/harbormaster_log_drops_total\{reason="file_removed_unread"\} 0/);
  }, 600_000);
});
