// Issue 16 acceptance 9: a 60 s OTLP receiver outage during 20 container runs, with an agent
// restart in the middle of it: every run span arrives afterwards (kept in the state-dir spool).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  runContainer,
  sleep,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import { allSpans, attrs, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const OUTAGE_MS = 60_000;

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function agentOn(stateDir: string, port: number): Promise<AgentProcess> {
  const agent = await startAgent({
    dockerHost: getDocker().host,
    stateDir,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
      HARBORMASTER_LOGS_ENABLED: 'false',
      HARBORMASTER_LIFECYCLE_TRACES_BATCH_DELAY_SECONDS: '0.2',
    },
  });
  await waitFor(async () => (await agent.get('/readyz')).status === 200, 30_000, 100, 'ready');
  return agent;
}

describeDocker('run spans through a receiver outage (issue 16, criterion 9)', () => {
  let rx: OtlpReceiver | undefined;
  let agent: AgentProcess | undefined;
  let stateDir = '';
  afterAll(async () => {
    await agent?.stop();
    await rx?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('20 runs during a 60 s outage, agent restarted midway: every span arrives afterwards', async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-spool-it-'));
    rx = await startOtlpReceiver();
    const port = rx.port;
    agent = await agentOn(stateDir, port);

    // Receiver reachable: a first run arrives directly.
    const first = uniqueName('span-before');
    await runContainer(['--rm', '--name', first, TEST_IMAGE, 'true']);
    const spanNames = (): string[] =>
      allSpans(rx!.traces()).map((s) => String(attrs(s.attributes)['container.name']));
    await waitFor(() => spanNames().includes(first), 30_000, 100, 'the first span');

    await rx.close();
    rx = undefined;
    const outageStart = Date.now();
    const names: string[] = [];
    const runs = async (n: number, a: AgentProcess) => {
      for (let i = 0; i < n; i++) {
        const name = uniqueName('span-outage');
        names.push(name);
        await runContainer(['--rm', '--name', name, TEST_IMAGE, 'sh', '-c', `exit ${i % 3}`], {
          allowFailure: true,
        });
      }
      // Every run so far (also those spooled by the agent before a restart) waits on disk.
      await waitFor(
        async () =>
          (metric((await a.get('/metrics')).text, 'harbormaster_otlp_spans_spooled') ?? 0) >=
          names.length,
        30_000,
        200,
        `${names.length} spans spooled`,
      );
    };
    await runs(10, agent);
    expect((await readdir(path.join(stateDir, 'spans'))).length).toBeGreaterThan(0);

    // Restart the agent in the middle of the outage: the spool is kept on disk.
    expect((await agent.stop()).code).toBe(0);
    agent = await agentOn(stateDir, port);
    await runs(10, agent);
    const m = (await agent.get('/metrics')).text;
    expect(metric(m, 'harbormaster_otlp_spans_spooled')).toBe(20);
    expect(m).toMatch(/harbormaster_otlp_spans_dropped_total\{reason="spool_full"\} 0/);

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
    rx = await startOtlpReceiver({ port });
    await waitFor(
      () => names.every((n) => spanNames().includes(n)),
      60_000,
      250,
      'every run span after the outage',
    );
    for (const n of names) expect(spanNames().filter((x) => x === n)).toHaveLength(1);
    await waitFor(
      async () =>
        metric((await agent!.get('/metrics')).text, 'harbormaster_otlp_spans_spooled') === 0,
      10_000,
      200,
      'spool empty',
    );
    expect(await readdir(path.join(stateDir, 'spans'))).toEqual([]);
  }, 240_000);
});
