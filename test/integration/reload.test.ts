// Issue 12, acceptance 4, through the built agent: SIGHUP reloads the configuration file.
// - live settings (log level, metrics label allowlist) apply without a restart; settings that
//   cannot change live (e.g. docker.request_timeout_seconds) are named in the log and keep their value;
// - an invalid file is rejected with the same error list as at startup, naming the key, and the
//   running configuration stays;
// - a changed drop regex applies to the next lines, with no numbered line lost or sent twice.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { allLogRecords, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
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

describeDocker('SIGHUP reload (issue 12)', () => {
  let dir: string;
  let rx: OtlpReceiver;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hm-reload-'));
    rx = await startOtlpReceiver();
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rx?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function agentWith(file: string, yaml: string, env: Record<string, string> = {}) {
    writeFileSync(file, yaml);
    const info = harness().docker;
    const a = await startAgent({
      dockerHost: getDocker().host,
      args: ['--config', file, '--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env,
    });
    agents.push(a);
    await a.waitForLog((r) => r.msg === 'Harbormaster started.', 30_000);
    return a;
  }

  it('applies the log level and the metrics allowlist live and names what needs a restart', async () => {
    const name = uniqueName('hm-reload-labels');
    await runContainer([
      '-d',
      '--name',
      name,
      '--label',
      'team=payments',
      TEST_IMAGE,
      'sleep',
      '600',
    ]);
    const file = path.join(dir, 'live.yaml');
    const a = await agentWith(file, 'log_level: info\nlogs:\n  enabled: false\n');
    const series = async () =>
      (await a.get('/metrics')).text
        .split('\n')
        .find((l) => l.startsWith('container_memory_usage_bytes{') && l.includes(`name="${name}"`));
    expect(await waitFor(series, 20_000, 200, 'the container series')).not.toContain(
      'container_label_team',
    );
    writeFileSync(
      file,
      'log_level: warn\ndocker:\n  request_timeout_seconds: 7\nlogs:\n  enabled: false\nmetrics:\n  label_allowlist: [team]\n',
    );
    process.kill(a.pid, 'SIGHUP');
    const warn = await a.waitForLog(
      (r) => String(r.msg).startsWith('These settings changed'),
      10_000,
    );
    expect(warn.settings).toEqual(['docker.request_timeout_seconds']);
    await waitFor(
      async () => (await series())?.includes('container_label_team="payments"'),
      10_000,
      200,
      'the new allowlist',
    );
    expect((await a.get('/healthz')).status).toBe(200);
    // the new level is in force: a second SIGHUP logs its warning but none of its info lines
    const seen = a.logs().length;
    process.kill(a.pid, 'SIGHUP');
    await waitFor(
      () =>
        a
          .logs()
          .slice(seen)
          .some((r) => String(r.msg).startsWith('These settings changed')),
      10_000,
      100,
      'the second reload',
    );
    expect(
      a
        .logs()
        .slice(seen)
        .filter((r) => Number(r.level) < 40),
    ).toEqual([]);
    expect(a.exit).toBeUndefined();
  });

  it('rejects an invalid file naming the key; the running configuration stays', async () => {
    const file = path.join(dir, 'invalid.yaml');
    const a = await agentWith(
      file,
      'logs:\n  enabled: false\nhttp:\n  containers_endpoint: true\n',
    );
    writeFileSync(
      file,
      'logs:\n  enabled: false\nhttp:\n  containers_endpoint: false\nmetrics:\n  min_interval_seconds: -5\n',
    );
    process.kill(a.pid, 'SIGHUP');
    const rejected = await a.waitForLog((r) => String(r.msg).startsWith('Reload rejected'), 10_000);
    expect(String(rejected.msg)).toContain('metrics.min_interval_seconds');
    // the valid part of the rejected file was not applied either
    expect((await a.get('/containers')).status).toBe(200);
    expect((await a.get('/metrics')).text).toMatch(
      /^harbormaster_config_reloads_total\{result="rejected"\} 1$/m,
    );
    expect(a.exit).toBeUndefined();
  });

  it('a changed drop regex applies to the next lines; no numbered line lost or sent twice', async () => {
    const file = path.join(dir, 'drop.yaml');
    const yaml = (pattern: string) =>
      [
        'logs:',
        '  exporter: otlp',
        '  batch_delay_seconds: 0.05',
        '  poll_interval_seconds: 0.1',
        '  processing:',
        `    drop_pattern: '${pattern}'`,
        'metrics:',
        '  enabled: false',
        '',
      ].join('\n');
    const a = await agentWith(file, yaml(' A$'), { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url });
    const name = uniqueName('hm-reload-drop');
    const N = 3000;
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        TEST_IMAGE,
        'sh',
        '-c',
        `i=1; while [ $i -le ${N} ]; do if [ $((i % 2)) -eq 0 ]; then echo "line $i A"; else echo "line $i B"; fi; i=$((i+1)); usleep 2000; done; sleep 600`,
      ])
    ).stdout.trim();
    const lines = () =>
      allLogRecords(rx.logs())
        .filter((r) => r.resource['container.id'] === id)
        .map((r) => r.body?.stringValue ?? '');
    await waitFor(() => lines().length > 200, 30_000, 100, 'the first lines');
    writeFileSync(file, yaml(' B$'));
    process.kill(a.pid, 'SIGHUP');
    await a.waitForLog((r) => String(r.msg).startsWith('Configuration reloaded'), 10_000);
    await waitFor(
      () => lines().some((l) => l.endsWith(`line ${N} A`) || l.endsWith(`line ${N - 1} A`)),
      60_000,
      200,
      'the last lines',
    );
    const got = lines().map((l) => /line (\d+) ([AB])$/.exec(l));
    const nums = got.map((m) => Number(m?.[1]));
    expect(new Set(nums).size).toBe(nums.length); // nothing sent twice
    const firstA = Math.min(...got.filter((m) => m?.[2] === 'A').map((m) => Number(m?.[1])));
    const lastB = Math.max(...got.filter((m) => m?.[2] === 'B').map((m) => Number(m?.[1])));
    expect(Number.isFinite(firstA)).toBe(true); // the new rule took effect
    // The switch falls between two lines: the old rule dropped every A before it, the new one
    // every B after it. Around it, one A (old rule) and one B (new rule) may both be dropped,
    // which is what the rules say: more than that between the last B and the first A is a loss.
    expect(lastB).toBeLessThan(firstA);
    expect(firstA - lastB).toBeLessThanOrEqual(3);
    for (let i = 1; i <= N; i++) {
      const isA = i % 2 === 0;
      const expected = i <= lastB ? !isA : i >= firstA ? isA : false;
      expect(nums.includes(i), `line ${i}`).toBe(expected);
    }
  });
});
