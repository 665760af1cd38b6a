// Issue 8 acceptance 2: a real Prometheus scrapes the agent while test containers run (one
// restarting, one OOM-killed, one unhealthy, one busy); every PromQL expression of every
// dashboard parses and returns data, except the ones listed below with their reason. The alert
// rules load into the same Prometheus and evaluate without errors.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { allExpressions, substitute } from '../../scripts/dashboards.js';
import { renderMetricsReference } from '../../src/config/metrics-reference.js';
import { renderReadmeSections } from '../../src/config/readme.js';
import { parse } from 'yaml';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { checkLabels, exportedFamilies } from '../support/promql-labels.js';
import {
  TEST_IMAGE,
  describeDocker,
  getDocker,
  harness,
  startAgent,
  startPrometheus,
  uniqueName,
  waitFor,
} from './harness/index.js';

/** Panels that legitimately have no data in this scenario, and why. */
const EXPECTED_EMPTY: Record<string, string> = {
  Network: 'test containers run with --network none: only loopback, which is skipped by default',
  'Drops by reason': 'nothing is dropped in this run',
  'Block I/O':
    "this machine's kernel accounts no block I/O to cgroups (blkio.throttle.io_service_bytes stays at 'Total 0' even for O_DIRECT reads and writes), so there are no device series",
};
/** Single expressions (by a distinctive fragment) that may be empty, and why. */
const EXPECTED_EMPTY_EXPR: Array<[string, string]> = [
  ['harbormaster_log_export_failures_total', 'no log export fails in this run'],
  ['harbormaster_otlp_export_failures_total', 'no trace export fails in this run'],
];

describeDocker('dashboards against a real Prometheus', () => {
  it('every dashboard expression parses and returns data', async () => {
    const d = getDocker();
    const info = harness().docker;
    const dataRoot = info.available ? info.dataRoot : '';
    const receiver = await startOtlpReceiver();
    const agent = await startAgent({
      dockerHost: d.host,
      args: ['--metrics-engine-disk-usage-interval-seconds', '2', '--logs-start-at', 'beginning'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        ...(dataRoot ? { HARBORMASTER_DOCKER_ROOT: dataRoot } : {}),
      },
    });
    // a Compose project label (on the default allowlist) so `$project` panels have data
    const label = [
      '--label',
      'harbormaster.test=1',
      '--label',
      'com.docker.compose.project=dash',
      '--network',
      'none',
    ];
    const names = {
      restarting: uniqueName('dash-restarting'),
      oom: uniqueName('dash-oom'),
      unhealthy: uniqueName('dash-unhealthy'),
      busy: uniqueName('dash-busy'),
    };
    // created first, started once Prometheus has seen their counters at 0
    await d.dockerOk([
      'create',
      ...label,
      '--name',
      names.restarting,
      '--restart',
      'on-failure:20',
      TEST_IMAGE,
      'sh',
      '-c',
      'echo starting; sleep 1; exit 3',
    ]);
    await d.dockerOk([
      'create',
      ...label,
      '--name',
      names.oom,
      '--memory',
      '16m',
      '--memory-swap',
      '16m',
      TEST_IMAGE,
      'sh',
      '-c',
      'sleep 4; tail /dev/zero',
    ]);
    await d.dockerOk([
      'run',
      '-d',
      ...label,
      '--name',
      names.unhealthy,
      '--health-cmd',
      'false',
      '--health-interval',
      '1s',
      '--health-retries',
      '1',
      '--stop-timeout',
      '1',
      TEST_IMAGE,
      'sleep',
      '600',
    ]);
    await d.dockerOk([
      'run',
      '-d',
      ...label,
      '--name',
      names.busy,
      '--cpus',
      '0.5',
      '--memory',
      '64m',
      '--stop-timeout',
      '1',
      TEST_IMAGE,
      'sh',
      '-c',
      'dd if=/dev/zero of=/tmp/f bs=1M count=16 oflag=direct 2>/dev/null; i=0; while :; do i=$((i+1)); [ $((i % 20000)) -eq 0 ] && echo "busy $i"; done',
    ]);
    const prom = await startPrometheus({
      targets: [new URL(agent.url).host],
      ruleFiles: [path.join(harness().repoRoot, 'alerts/harbormaster.rules.yml')],
    });
    await prom.waitForTargets();
    await prom.waitForScrapes(3); // samples before the restarts and the OOM kill
    await d.dockerOk(['start', names.restarting, names.oom]);
    await waitFor(
      async () =>
        (await prom.query(`container_oom_events_total{name="${names.oom}"} > 0`)).length > 0,
      60_000,
      500,
      'the OOM kill to be scraped',
    );
    await waitFor(
      async () =>
        (await prom.query(`container_restarts_total{name="${names.restarting}"} >= 2`)).length > 0,
      60_000,
      500,
      'restarts to be scraped',
    );
    await prom.waitForScrapes(5); // rate() windows with samples after them

    const empty: string[] = [];
    const problems: string[] = [];
    for (const { dashboard, panel, expr } of allExpressions()) {
      let result;
      try {
        result = await prom.query(substitute(expr));
      } catch (err) {
        problems.push(`${dashboard} / ${panel}: ${(err as Error).message}`);
        continue;
      }
      if (result.length > 0) continue;
      const reason =
        EXPECTED_EMPTY[panel] ?? EXPECTED_EMPTY_EXPR.find(([frag]) => expr.includes(frag))?.[1];
      if (reason) empty.push(`${panel}: ${reason}`);
      else problems.push(`${dashboard} / ${panel}: no data for ${expr}`);
    }
    expect(problems).toEqual([]);
    console.log(`dashboard expressions without data (expected):\n  ${empty.join('\n  ')}`);

    // the alert rules load and evaluate cleanly; the OOM kill fires its alert
    const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: {
        groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }>;
      };
    };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(10);
    expect(all.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual(
      [],
    );
    await waitFor(
      async () =>
        (
          await prom.query(
            `ALERTS{alertname="ContainerOOMKilled", name="${names.oom}", alertstate="firing"}`,
          )
        ).length === 1,
      20_000,
      500,
      'ContainerOOMKilled to fire',
    );

    // Every label a rule or a dashboard matches on, groups by or joins on exists on its metric in
    // this live scrape, plus the cgroup v2 golden exposition for the families this run cannot
    // have (network: --network none; block I/O: this kernel accounts none). Families exported
    // without samples cannot show labels: they are listed, not failed.
    const live0 = exportedFamilies([
      (await agent.get('/metrics')).text,
      await readFile(
        path.join(harness().repoRoot, 'test/fixtures/cgroup/v2-systemd.golden.prom'),
        'utf8',
      ),
    ]);
    // Security posture series exist only for containers with that setting (host namespaces,
    // added capabilities, sensitive mounts, allow-listed findings): their labels come from the
    // README's posture table (its extra labels plus the container labels of every family).
    const readmeText = await readFile(path.join(harness().repoRoot, 'README.md'), 'utf8');
    for (const m of readmeText.matchAll(/^\| `(container_security_[a-z_]+)` \| ([^|]*) \|/gm)) {
      const name = m[1] ?? '';
      if (live0.get(name)?.samples) continue;
      const labels = new Set(['id', 'name', 'image']);
      for (const l of (m[2] ?? '').matchAll(/`([^`]+)`/g)) labels.add(l[1] ?? '');
      live0.set(name, { labels, samples: 1 });
    }
    const ruleFile = parse(
      await readFile(path.join(harness().repoRoot, 'alerts/harbormaster.rules.yml'), 'utf8'),
    ) as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> };
    const checks = [
      ...ruleFile.groups
        .flatMap((g) => g.rules)
        .map((r) => checkLabels(r.expr, live0, r.alert ?? 'rule')),
      ...allExpressions().map((e) =>
        checkLabels(substitute(e.expr), live0, `${e.dashboard} / ${e.panel}`),
      ),
    ];
    expect(checks.flatMap((c) => c.problems)).toEqual([]);
    const unverified = [...new Set(checks.flatMap((c) => c.unverified))];
    console.log(
      `metrics without samples in this run (labels not checked): ${unverified.join(', ')}`,
    );

    // The README's metrics reference comes from this running agent (every family is live here)
    // plus the cgroup v2 golden exposition for the v2-only families (PSI).
    const live = (await agent.get('/metrics')).text;
    const v2 = await readFile(
      path.join(harness().repoRoot, 'test/fixtures/cgroup/v2-systemd.golden.prom'),
      'utf8',
    );
    const readmePath = path.join(harness().repoRoot, 'README.md');
    const readme = await readFile(readmePath, 'utf8');
    const expected = await renderReadmeSections(readme, [
      { name: 'metrics-reference', render: () => renderMetricsReference([live, v2]) },
    ]);
    if (process.env.HARBORMASTER_UPDATE_DOCS === '1') await writeFile(readmePath, expected);
    else
      expect(
        readme,
        'README metrics reference is stale: rerun with HARBORMASTER_UPDATE_DOCS=1',
      ).toBe(expected);
    await agent.stop();
    await receiver.close();
  });
});
