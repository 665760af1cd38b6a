// Security alert rules (alerts/security.rules.yml): promtool validates them, every alert has a
// firing and a non-firing case, and every runbook link is a heading of the README.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dir = new URL('../../alerts/', import.meta.url).pathname;
const promtool = spawnSync('promtool', ['--version']).status === 0;
const needPromtool = promtool || process.env.CI ? it : it.skip; // CI must have it (.ci/run installs prometheus)

interface RuleFile {
  groups: Array<{
    rules: Array<{ alert?: string; expr: string; annotations?: Record<string, string> }>;
  }>;
}
interface TestFile {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

const rules = parse(readFileSync(`${dir}security.rules.yml`, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);

describe('security alert rules', () => {
  needPromtool('pass promtool check rules', () => {
    const r = spawnSync('promtool', ['check', 'rules', 'security.rules.yml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  needPromtool('pass their promtool unit tests', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'security.rules.test.yml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('have, for every alert, a test where it fires and one where it does not', () => {
    const tests = parse(readFileSync(`${dir}security.rules.test.yml`, 'utf8')) as TestFile;
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    expect(alerts.map((a) => a.alert)).toEqual([
      'ContainerPrivilegedRunning',
      'ContainerDockerSocketMounted',
      'ContainerHostNamespaceShared',
      'ContainerExecInProduction',
    ]);
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

  it('link runbooks that are headings of the README', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const headings = new Set(
      [...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const a of alerts) {
      const anchor = /#([a-z0-9-]+)'?$/.exec(a.annotations?.runbook_url ?? '')?.[1];
      expect(anchor, `${a.alert} runbook_url`).toBe(a.alert!.toLowerCase());
      expect(headings.has(anchor!), `README heading for ${a.alert}`).toBe(true);
    }
  });
});
