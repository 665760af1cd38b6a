// Every label an alert rule, its promtool test input or a dashboard relies on exists on the metric:
// checked against the README metrics reference (generated from a live scrape by
// test/integration/dashboards.test.ts) plus the label names the agent's own prom-client metrics
// declare (a counter that has not counted yet shows no labels in a scrape). The integration test
// repeats the rules and dashboards check against the live scrape itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Agent } from '../../src/agent.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/util/logger.js';
import { allExpressions, substitute } from '../../scripts/dashboards.js';
import {
  SYNTHETIC,
  TARGET_LABELS,
  checkLabels,
  type ExportedFamily,
} from '../support/promql-labels.js';

const root = new URL('../../', import.meta.url).pathname;
const readme = readFileSync(`${root}README.md`, 'utf8');

/** Families and labels from the README's metrics reference table. */
function referenceFamilies(): Map<string, ExportedFamily> {
  const out = new Map<string, ExportedFamily>();
  for (const m of readme.matchAll(/^\| `([a-z_:]+)` \| ([a-z]+) \| ([^|]*) \|/gm)) {
    const labels = new Set([...(m[3] ?? '').matchAll(/`([^`]+)`/g)].map((l) => l[1] ?? ''));
    // a histogram's buckets carry `le`
    if (m[2] === 'histogram') labels.add('le');
    out.set(m[1] ?? '', { labels, samples: 1 });
  }
  // The security posture table (only series for containers with that setting, so a live scrape
  // may not show them): its own extra labels plus the container labels every family has.
  for (const m of readme.matchAll(/^\| `(container_security_[a-z_]+)` \| ([^|]*) \|/gm)) {
    if (out.has(m[1] ?? '')) continue;
    const labels = new Set(['id', 'name', 'image']);
    for (const l of (m[2] ?? '').matchAll(/`([^`]+)`/g)) labels.add(l[1] ?? '');
    out.set(m[1] ?? '', { labels, samples: 1 });
  }
  return out;
}

/** Adds the labels the agent's prom-client metrics declare (and the process_/nodejs_ ones). */
function withDeclared(families: Map<string, ExportedFamily>): Map<string, ExportedFamily> {
  const { config } = loadConfig({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' },
    flags: { 'lifecycle-traces-enabled': 'true' },
  });
  const agent = new Agent(config, createLogger('silent'));
  for (const m of agent.ctx.metrics.registry.getMetricsAsArray()) {
    const declared = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    const f = families.get(m.name) ?? { labels: new Set<string>(), samples: 1 };
    for (const l of declared) f.labels.add(l);
    families.set(m.name, f);
  }
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes'])
    families.set(name, families.get(name) ?? { labels: new Set(), samples: 1 });
  return families;
}

/** `container_label_<x>` is exported for allowlisted labels: the table shows `container_label_*`. */
function expandAllowlisted(families: Map<string, ExportedFamily>): Map<string, ExportedFamily> {
  for (const f of families.values())
    if (f.labels.has('container_label_*'))
      for (const k of ['com_docker_compose_project', 'com_docker_compose_service'])
        f.labels.add(`container_label_${k}`);
  return families;
}

const families = expandAllowlisted(withDeclared(referenceFamilies()));

interface RuleFile {
  groups: Array<{ rules: Array<{ alert?: string; expr: string }> }>;
}
interface TestFile {
  tests: Array<{ name: string; input_series?: Array<{ series: string }> }>;
}

describe('labels used by rules and dashboards', () => {
  it('the reference knows the metrics (sanity of the parsing above)', () => {
    expect(families.get('container_cpu_usage_seconds_total')?.labels).toContain('cpu');
    expect(families.get('harbormaster_log_export_failures_total')?.labels).toContain('kind');
    expect(families.get('harbormaster_log_export_failures_total')?.labels).not.toContain('reason');
  });

  it('every label matcher, by/without and on/ignoring label of a rule exists on its metric', () => {
    const rules = parse(readFileSync(`${root}alerts/harbormaster.rules.yml`, 'utf8')) as RuleFile;
    const problems = rules.groups
      .flatMap((g) => g.rules)
      .flatMap((r) => checkLabels(r.expr, families, r.alert ?? 'record').problems);
    expect(problems).toEqual([]);
  });

  it('every dashboard expression uses labels its metrics have', () => {
    const problems = allExpressions().flatMap(
      (e) => checkLabels(substitute(e.expr), families, `${e.dashboard} / ${e.panel}`).problems,
    );
    expect(problems).toEqual([]);
  });

  it('the promtool tests feed series with labels the metric really has', () => {
    const tests = parse(
      readFileSync(`${root}alerts/harbormaster.rules.test.yml`, 'utf8'),
    ) as TestFile;
    const problems: string[] = [];
    for (const t of tests.tests)
      for (const { series } of t.input_series ?? []) {
        const [, metric = '', labels = ''] = /^([a-zA-Z_:][\w:]*)\{?(.*?)\}?$/.exec(series) ?? [];
        const f = families.get(metric) ?? SYNTHETIC.get(metric);
        if (!f) {
          problems.push(`${t.name}: ${metric} is not exported`);
          continue;
        }
        for (const [, l = ''] of labels.matchAll(/([a-zA-Z_]\w*)="/g))
          if (!TARGET_LABELS.has(l) && !f.labels.has(l))
            problems.push(`${t.name}: ${metric} has no label "${l}"`);
      }
    expect(problems).toEqual([]);
  });

  it('the checker catches a label the metric does not have (the old reason/kind mix-up)', () => {
    const bad = checkLabels(
      'sum by (reason) (rate(harbormaster_log_export_failures_total{kind="retryable"}[5m]))',
      families,
      'old panel',
    );
    expect(bad.problems).toEqual([
      'old panel: by label "reason" is on none of harbormaster_log_export_failures_total',
    ]);
    expect(
      checkLabels('up{job="x"} == 0 and on (job, instance) harbormaster_build_info', families, 'ok')
        .problems,
    ).toEqual([]);
    expect(checkLabels('container_state{status="running"}', families, 'x').problems).toEqual([
      'x: container_state has no label "status"',
    ]);
    // a histogram's series are its family's: `le` is there, another label is not
    const q = (by: string): string[] =>
      checkLabels(
        `histogram_quantile(0.9, sum by (${by}) (rate(harbormaster_log_export_duration_seconds_bucket[5m])))`,
        families,
        'h',
      ).problems;
    expect(q('le, instance')).toEqual([]);
    expect(q('le, kind')).toEqual([
      'h: by label "kind" is on none of harbormaster_log_export_duration_seconds_bucket',
    ]);
    expect(checkLabels('nope_bucket', families, 'n').problems).toEqual([
      'n: metric nope_bucket is not exported',
    ]);
  });
});
