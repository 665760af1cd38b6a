// Issue 16 acceptance 1: classic catastrophic-backtracking shapes as drop, keep, multiline and
// redaction patterns, on lines crafted to trigger them. With a backtracking engine one such line
// froze the whole agent. Here: /healthz answers within 1 s throughout, another container's logs
// keep flowing, every pattern still does its job, and SIGTERM stops the agent within budget.
import { mkdtemp, writeFile } from 'node:fs/promises';
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
import { allLogRecords, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const SHUTDOWN_BUDGET_S = 8;

/** Polls /healthz every 100 ms and keeps the slowest answer (a failed request counts as ∞). */
function watchHealth(agent: AgentProcess) {
  let worst = 0;
  let polls = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        const r = await agent.get('/healthz', { signal: AbortSignal.timeout(5000) });
        if (r.status !== 200) worst = Infinity;
      } catch {
        worst = Infinity;
      }
      worst = Math.max(worst, performance.now() - t0);
      polls++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    get worst() {
      return worst;
    },
    get polls() {
      return polls;
    },
    async end() {
      stop = true;
      await loop;
    },
  };
}

describeDocker('catastrophic patterns (issue 16, criterion 1)', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess;

  beforeAll(async () => {
    rx = await startOtlpReceiver();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm-patterns-'));
    const config = path.join(dir, 'harbormaster.yaml');
    // Redaction patterns only come from the operator's configuration.
    await writeFile(
      config,
      [
        'logs:',
        '  processing:',
        '    redaction:',
        '      patterns:',
        "        - '(x+x+)+y'",
        "        - '^(([a-z])+.)+[A-Z]([a-z])+$'",
        '',
      ].join('\n'),
    );
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      stateDir: dir,
      args: [
        '--config',
        config,
        '--docker-root',
        info.available ? info.dataRoot : '/var/lib/docker',
      ],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
    await waitFor(async () => (await agent.get('/readyz')).status === 200, 30_000, 100, 'ready');
  });
  afterAll(async () => {
    await agent?.kill().catch(() => undefined);
    await rx?.close();
  });

  const bodiesOf = (id: string): string[] =>
    allLogRecords(rx.logs())
      .filter((r) => r.resource['container.id'] === id)
      .map((r) => r.body?.stringValue ?? '');

  async function run(labels: Record<string, string>, script: string): Promise<string> {
    const args = ['-d', '--name', uniqueName('redos'), '--stop-timeout', '1'];
    for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
    return (await runContainer([...args, TEST_IMAGE, 'sh', '-c', script])).stdout.trim();
  }

  it('crafted lines against drop, keep, multiline and redaction patterns stall nothing', async () => {
    const health = watchHealth(agent);
    // A bystander: one line every 100 ms for the whole test.
    const bystander = await run(
      {},
      'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done',
    );
    await waitFor(() => bodiesOf(bystander).length > 0, 20_000, 50, 'bystander flowing');

    const a34 = `${'a'.repeat(34)}!`;
    const words = `${'word '.repeat(30)}!`;
    const a60 = `${'a'.repeat(60)}!`;
    const xs = 'x'.repeat(5000);
    const echo = (l: string, n: number) =>
      `i=0; while [ $i -lt ${n} ]; do echo '${l}'; i=$((i+1)); done`;

    const drop = await run(
      { 'harbormaster.logs.drop': '^(a+)+$', 'harbormaster.logs.parser': 'none' },
      `${echo(a34, 200)}; echo aaaa; echo 'drop-done'; sleep 600`,
    );
    const keep = await run(
      { 'harbormaster.logs.keep': '^(\\w+\\s?)*$', 'harbormaster.logs.parser': 'none' },
      `${echo(words, 200)}; echo 'keep this line'; sleep 600`,
    );
    const multi = await run(
      {
        'harbormaster.logs.multiline.pattern': '^(a|aa)+$',
        'harbormaster.logs.parser': 'none',
      },
      `echo aaaa; ${echo(a60, 50)}; echo aa; echo 'multi-done'; sleep 600`,
    );
    const redact = await run(
      { 'harbormaster.logs.parser': 'none' },
      `${echo(xs, 100)}; echo 'id xxxxy end'; echo 'redact-done'; sleep 600`,
    );
    // A pattern the engine cannot take: counted, logged once naming it, ignored.
    const bad = await run(
      { 'harbormaster.logs.drop': 'noise(?=!)', 'harbormaster.logs.parser': 'none' },
      `echo 'noise!'; sleep 600`,
    );

    const has = (id: string, pred: (b: string) => boolean, what: string) =>
      waitFor(() => bodiesOf(id).some(pred), 30_000, 50, what);
    await has(drop, (b) => b.includes('drop-done'), 'drop container done');
    await has(keep, (b) => b === 'keep this line', 'keep container done');
    await has(multi, (b) => b.includes('multi-done'), 'multiline container done');
    await has(redact, (b) => b === 'redact-done', 'redaction container done');
    await has(bad, (b) => b === 'noise!', 'bad-pattern container shipped');

    // Each pattern did its job.
    expect(bodiesOf(drop)).toEqual([...Array<string>(200).fill(a34), 'drop-done']);
    expect(bodiesOf(keep)).toEqual(['keep this line']);
    const m = bodiesOf(multi);
    expect(m[0]).toBe(['aaaa', ...Array<string>(50).fill(a60)].join('\n'));
    expect(m).toContain('aa\nmulti-done');
    const r = bodiesOf(redact);
    expect(r.filter((b) => b === xs)).toHaveLength(100);
    // The pattern has a capture group: only the group is masked.
    expect(r).toContain('id ***y end');

    // The bystander kept flowing: its ticks are contiguous and still arriving.
    const before = bodiesOf(bystander).length;
    await waitFor(() => bodiesOf(bystander).length >= before + 10, 10_000, 50, 'more ticks');
    const ticks = bodiesOf(bystander).map((b) => Number(b.split(' ')[1]));
    expect(ticks).toEqual(ticks.map((_, i) => i));

    const metrics = (await agent.get('/metrics')).text;
    expect(metrics).toMatch(
      /harbormaster_log_processing_events_total\{event="invalid_label"\} [1-9]/,
    );
    const warn = await agent.waitForLog((l) => String(l.msg).includes('harbormaster.logs.drop'));
    expect(String(warn.msg)).toContain('lookaheads');

    await health.end();
    expect(health.polls).toBeGreaterThan(20);
    expect(health.worst).toBeLessThan(1000);

    const exit = await agent.stop('SIGTERM', (SHUTDOWN_BUDGET_S + 5) * 1000);
    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(SHUTDOWN_BUDGET_S * 1000);
  }, 180_000);
});
