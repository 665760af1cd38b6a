import { describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import {
  ExecAuditor,
  auditAttributes,
  auditBody,
  type ApiExecInspect,
  type ExecAuditRecord,
} from '../../../src/collectors/lifecycle/exec-audit.js';
import {
  LifecycleTracker,
  MAX_EXEC_SPAN_EVENTS,
  isHealthProbe,
} from '../../../src/collectors/lifecycle/tracker.js';
import { renderLifecycle } from '../../../src/collectors/lifecycle/index.js';
import { loadConfig } from '../../../src/config/load.js';
import { buildRedactor } from '../../../src/logs/processing/processor.js';
import type { ContainerRun } from '../../../src/exporters/otlp-traces.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { securityFromInspect } from '../../../src/docker/inventory.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { silentLogger } from './helpers.js';

const ID = 'c'.repeat(64);
const T0 = 1_750_000_000_000;
const info = makeContainerInfo({
  id: ID,
  name: 'db',
  image: 'postgres:16',
  startedAt: T0,
  security: securityFromInspect({
    Id: ID,
    Config: { Healthcheck: { Test: ['CMD-SHELL', 'pg_isready'] } },
  }),
});
const config = loadConfig({ env: {} }).config;
const redactor = buildRedactor(config.logs.processing.redaction);
const redact = (s: string): string => redactor.redact(s).s;

function ev(action: string, ms: number, attrs: Record<string, string>): DockerEvent {
  return {
    Type: 'container',
    Action: action,
    Actor: { ID, Attributes: { name: 'db', ...attrs } },
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
}

/** The events `docker exec -u postgres db psql "postgresql://app:hunter2@db/x" -c 'select 1'` sends. */
const CMD = 'psql postgresql://app:hunter2@db/x -c select 1';
const execEvents = (execID: string, exitCode: string, at = T0 + 5000): DockerEvent[] => [
  ev(`exec_create: ${CMD}`, at, { execID }),
  ev(`exec_start: ${CMD}`, at + 10, { execID }),
  ev('exec_die', at + 900, { execID, exitCode }),
];

/** A health probe: an exec of the container's health check command, run by the daemon. */
const probeEvents = (execID: string, at = T0 + 7000): DockerEvent[] => [
  ev('exec_create: /bin/sh -c pg_isready', at, { execID }),
  ev('exec_start: /bin/sh -c pg_isready', at, { execID }),
  ev('exec_die', at + 50, { execID, exitCode: '0' }),
];

function auditor(
  inspect: (id: string) => Promise<ApiExecInspect>,
  next?: (r: ExecAuditRecord) => void,
) {
  const records: ExecAuditRecord[] = [];
  const registry = new Registry();
  const errors = new Counter({
    name: 'errs',
    help: 'x',
    labelNames: ['reason'],
    registers: [registry],
  });
  const a = new ExecAuditor({
    inspectExec: (id) => inspect(id),
    container: (id) => (id === ID ? info : undefined),
    sink: {
      submit: (r) => {
        records.push(r);
        next?.(r);
      },
    },
    redact,
    logger: silentLogger,
    errors,
  });
  return { a, records, errors: registry };
}

const flushed = () => new Promise((r) => setTimeout(r, 10));

describe('exec audit records', () => {
  it('record the redacted command, user, privileged, tty and exit code 3', async () => {
    const { a, records } = auditor((id) =>
      Promise.resolve({
        ExitCode: null,
        ProcessConfig: {
          user: 'postgres',
          privileged: true,
          tty: true,
          entrypoint: 'psql',
          arguments: [id],
        },
      }),
    );
    for (const e of execEvents('e1', '3')) a.onDockerEvent(e);
    await flushed();
    expect(records.map((r) => r.phase)).toEqual(['start', 'exit']);
    const end = records[1]!;
    expect(end).toMatchObject({
      containerId: ID,
      execId: 'e1',
      command: 'psql postgresql://app:***@db/x -c select 1',
      user: 'postgres',
      privileged: true,
      tty: true,
      exitCode: 3,
      timeMs: T0 + 5900,
    });
    expect(end.container?.name).toBe('db');
    expect(records[0]!.exitCode).toBeUndefined();
    expect(auditBody(records[0]!)).toBe(
      'docker exec in db as postgres privileged with a tty: psql postgresql://app:***@db/x -c select 1',
    );
    expect(auditBody(end)).toBe(
      'docker exec in db ended with exit code 3: psql postgresql://app:***@db/x -c select 1',
    );
    expect(auditAttributes(end)).toEqual({
      'event.name': 'container.exec',
      'container.exec.phase': 'exit',
      'container.exec.id': 'e1',
      'process.command_line': 'psql postgresql://app:***@db/x -c select 1',
      'process.user.name': 'postgres',
      'container.exec.privileged': true,
      'container.exec.tty': true,
      'process.exit.code': 3,
    });
    expect(JSON.stringify(records)).not.toContain('hunter2');
  });

  it('ignore health probes, and keep a record (without user) when the exec cannot be read', async () => {
    const { a, records, errors } = auditor(() => Promise.reject(new Error('no such exec')));
    for (const e of probeEvents('p1')) a.onDockerEvent(e);
    for (const e of execEvents('e2', '0')) a.onDockerEvent(e);
    await flushed();
    expect(records.map((r) => [r.execId, r.phase, r.user, r.exitCode])).toEqual([
      ['e2', 'start', undefined, undefined],
      ['e2', 'exit', undefined, 0],
    ]);
    expect(auditBody(records[0]!)).toBe(
      'docker exec in db: psql postgresql://app:***@db/x -c select 1',
    );
    expect(await errors.metrics()).toContain('errs{reason="inspect_failed"} 1');
  });
});

describe('exec events on the lifecycle', () => {
  function tracked() {
    const runs: ContainerRun[] = [];
    const t = new LifecycleTracker({ redact, hooks: { runEnded: (r) => runs.push(r) } });
    t.onInventory({ type: 'added', container: info }, true);
    return { t, runs };
  }
  const execTotal = (t: LifecycleTracker, action: string): number | undefined => {
    const text = renderLifecycle(t.served(), {
      cgroupVersion: () => '1',
      labelAllowlist: [],
      oomTotal: () => 0,
      imagePulls: () => 0,
      imageDeletes: () => 0,
    });
    const line = text
      .split('\n')
      .find((l) => l.startsWith('container_exec_total{') && l.includes(`action="${action}"`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('count each docker exec once per action, not health probes, and put them on the run span', () => {
    const { t, runs } = tracked();
    expect(execTotal(t, 'exec_start')).toBe(0);
    for (const e of [...execEvents('e1', '3'), ...probeEvents('p1')]) t.onDockerEvent(e);
    expect(execTotal(t, 'exec_create')).toBe(1);
    expect(execTotal(t, 'exec_start')).toBe(1);
    expect(execTotal(t, 'exec_die')).toBe(1);
    t.onDockerEvent(ev('die', T0 + 10_000, { exitCode: '0' }));
    expect(runs).toHaveLength(1);
    const evs = runs[0]!.events.filter((e) => e.name.startsWith('exec_'));
    expect(evs.map((e) => [e.name, e.attributes])).toEqual([
      [
        'exec_create',
        {
          'container.exec.id': 'e1',
          'process.command_line': 'psql postgresql://app:***@db/x -c select 1',
        },
      ],
      ['exec_start', { 'container.exec.id': 'e1' }],
      ['exec_die', { 'container.exec.id': 'e1', 'process.exit.code': 3 }],
    ]);
  });

  it('bound the exec events of one run span', () => {
    const { t, runs } = tracked();
    for (let i = 0; i < MAX_EXEC_SPAN_EVENTS; i++)
      for (const e of execEvents(`x${i}`, '0', T0 + 1000 + i)) t.onDockerEvent(e);
    expect(execTotal(t, 'exec_die')).toBe(MAX_EXEC_SPAN_EVENTS);
    t.onDockerEvent(ev('die', T0 + 99_000, { exitCode: '0' }));
    expect(runs[0]!.events).toHaveLength(MAX_EXEC_SPAN_EVENTS);
  });
});

describe('health probes', () => {
  const withCheck = (Test: string[], Shell?: string[]) =>
    makeContainerInfo({
      id: ID,
      security: securityFromInspect({ Id: ID, Config: { Healthcheck: { Test }, Shell } }),
    });

  it('are told from people by the health check command, in every form', () => {
    expect(
      isHealthProbe(withCheck(['CMD', 'pg_isready', '-q']), 'exec_create: pg_isready -q'),
    ).toBe(true);
    expect(
      isHealthProbe(withCheck(['CMD-SHELL', 'curl -f x']), 'exec_create: /bin/sh -c curl -f x'),
    ).toBe(true);
    expect(
      isHealthProbe(
        withCheck(['CMD-SHELL', 'exit 0'], ['/bin/bash', '-o', 'pipefail', '-c']),
        'exec_create: /bin/bash -o pipefail -c exit 0',
      ),
    ).toBe(true);
    expect(isHealthProbe(withCheck(['CMD', 'pg_isready']), 'exec_create: psql -c drop')).toBe(
      false,
    );
    expect(isHealthProbe(withCheck(['NONE']), 'exec_create: ')).toBe(false);
    expect(isHealthProbe(info, 'exec_create: sh')).toBe(false);
  });
});
