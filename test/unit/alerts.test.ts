// Alert rules: promtool validates them, and every alert has a firing and a non-firing case.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dir = new URL('../../alerts/', import.meta.url).pathname;
const promtool = spawnSync('promtool', ['--version']).status === 0;
const needPromtool = promtool || process.env.CI ? it : it.skip; // CI must have it (.ci/run installs prometheus)

interface RuleFile {
  groups: Array<{
    rules: Array<{
      alert?: string;
      expr: string;
      for?: string;
      annotations?: Record<string, string>;
    }>;
  }>;
}
interface TestFile {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

const rules = parse(readFileSync(`${dir}harbormaster.rules.yml`, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);

describe('alert rules', () => {
  needPromtool('pass promtool check rules', () => {
    const r = spawnSync('promtool', ['check', 'rules', 'harbormaster.rules.yml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  needPromtool('pass their promtool unit tests', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'harbormaster.rules.test.yml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('have, for every alert, a test where it fires and one where it does not', () => {
    const tests = parse(readFileSync(`${dir}harbormaster.rules.test.yml`, 'utf8')) as TestFile;
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${a.alert} fires somewhere`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${a.alert} stays quiet somewhere`,
      ).toBe(true);
    }
  });

  it('link a runbook that is a heading of the README, overridable by an external label', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    // GitHub's anchors: lower case, punctuation dropped, spaces to dashes
    const anchors = new Set(
      [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        (m[1] ?? '')
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const base =
      '{{ or $externalLabels.harbormaster_runbook_url "https://github.com/harbormaster/harbormaster/blob/main/README.md" }}';
    for (const a of alerts) {
      const url = a.annotations?.runbook_url ?? '';
      expect(url, `${a.alert} runbook_url`).toMatch(/#[a-z0-9-]+$/);
      expect(url.startsWith(`${base}#`), `${a.alert}: ${url}`).toBe(true);
      const anchor = url.slice(url.indexOf('#') + 1);
      expect(anchors.has(anchor), `${a.alert}: README has no heading for #${anchor}`).toBe(true);
    }
  });

  it('has a log-loss alert on logs Docker rotated away before they were read', () => {
    const lost = alerts.find((a) => a.expr.includes('harbormaster_log_drops_total'));
    expect(lost?.alert).toBe('HarbormasterLogsLost');
    expect(lost?.expr).toContain('rotated_away');
  });

  it('carry summary and description annotations', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    for (const a of alerts) {
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
    }
  });
});
