// Issue 16 (hardening): the lifecycle component follows a SIGHUP like the rest of the agent. Its
// metrics (container_label_* of metrics.label_allowlist), its run spans (container.label.*) and
// the redaction of exec commands (on span events and exec audit records) used to keep the
// allowlist and the redaction rules of the startup configuration: a narrowed allowlist still
// exported a secret label, and a new redaction pattern never masked an exec command.
//
// Through the real Agent and its reload(): the configuration file is rewritten and re-read, the
// agent replaces its configuration, and the real LifecycleCollector is asked again. The container
// comes in through the tracker's inventory and daemon-event entry points (no daemon needed); spans
// are captured where the state-dir spool would wrap the exporter.
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { containerEvent, handBuiltLifecycle, stopLifecycles, until } from './lifecycle-harness.js';

const ID = 'e'.repeat(64);
const T0 = 1_750_000_000_000;

afterEach(stopLifecycles);

function yaml(o: { metrics: string[]; logs: string[]; patterns: string[] }): string {
  return [
    'metrics:',
    `  label_allowlist: ${JSON.stringify(o.metrics)}`,
    'logs:',
    `  label_allowlist: ${JSON.stringify(o.logs)}`,
    '  processing:',
    '    redaction:',
    `      patterns: ${JSON.stringify(o.patterns)}`,
    '',
  ].join('\n');
}

const ev = (action: string, ms: number, attrs: Record<string, string> = {}): DockerEvent =>
  containerEvent(ID, 'api', action, ms, attrs);

describe('lifecycle after SIGHUP', () => {
  it('metrics, run spans and exec redaction take the new allowlist and redaction rules', async () => {
    // (no daemon: exec inspects fail and are counted; the exec auditor is built, its records
    // would go to the log intake)
    const {
      agent,
      lc: c,
      spans,
      env,
      file,
    } = handBuiltLifecycle({
      prefix: 'hm-lc-reload-',
      configYaml: yaml({
        metrics: ['team', 'api.token'],
        logs: ['team', 'api.token'],
        patterns: [],
      }),
      logIntake: true,
    });
    const info = makeContainerInfo({
      id: ID,
      name: 'api',
      labels: { team: 'payments', 'api.token': 'hunter2' },
      startedAt: T0,
      createdAt: T0 - 1000,
    });
    c.tracker.onInventory({ type: 'added', container: info }, false);
    c.tracker.onDockerEvent(ev('start', T0));
    const restarts = (): string =>
      c
        .render()
        .split('\n')
        .find((l) => l.startsWith('container_restarts_total{')) ?? '';
    expect(restarts()).toContain('container_label_api_token="hunter2"');
    expect(restarts()).toContain('container_label_team="payments"');

    // SIGHUP: api.token leaves both allowlists, and a pattern masks passwords on command lines.
    writeFileSync(
      file!,
      yaml({ metrics: ['team'], logs: ['team'], patterns: ['(?<=--password=)\\S+'] }),
    );
    const report = await agent.reload(() => loadConfig({ env, file }).config);
    expect(report?.applied).toEqual(
      expect.arrayContaining(['metrics.label_allowlist', 'logs.processing.redaction.patterns']),
    );

    // the next scrape
    expect(c.render()).not.toContain('hunter2');
    expect(restarts()).toContain('container_label_team="payments"');

    // the next exec: its command is masked on the span event (the exec audit records use the
    // same redact function of the collector)
    c.tracker.onDockerEvent(
      ev('exec_create: mysql --password=s3cret -e select', T0 + 100, { execID: 'x1' }),
    );
    c.tracker.onDockerEvent(
      ev('exec_start: mysql --password=s3cret -e select', T0 + 110, {
        execID: 'x1',
      }),
    );
    c.tracker.onDockerEvent(ev('die', T0 + 1000, { exitCode: '0' }));
    const span = await until(() => spans.find((s) => s.attributes['container.id'] === ID), 'span');
    expect(span.resource.attributes['container.label.team']).toBe('payments');
    expect(span.resource.attributes['container.label.api.token']).toBeUndefined();
    expect(JSON.stringify(span.resource.attributes)).not.toContain('hunter2');
    const exec = span.events.find((e) => e.name === 'exec_create');
    expect(exec?.attributes?.['process.command_line']).toBe('mysql --password=*** -e select');
  });
});
