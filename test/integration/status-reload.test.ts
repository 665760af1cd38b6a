// The status page and the posture series follow SIGHUP like /containers and the container
// families do: a narrowed label allowlist hides the label at once (labels routinely hold
// secrets), and a hostile label value reaches the JSON as data, never as markup.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

describeDocker('status page across SIGHUP', () => {
  let dir: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hm-status-reload-'));
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('a label dropped from the allowlist by SIGHUP leaves the container view and /containers', async () => {
    const secret = '</script><script>alert(1)</script>';
    const name = uniqueName('hm-status-reload');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--label',
        'team=payments',
        '--label',
        `api.token=${secret}`,
        TEST_IMAGE,
        'sleep',
        '600',
      ])
    ).stdout.trim();
    const file = path.join(dir, 'agent.yaml');
    const yaml = (allow: string) =>
      `logs:\n  enabled: false\nmetrics:\n  label_allowlist: [${allow}]\n`;
    writeFileSync(file, yaml('team, api.token'));
    const a = await startAgent({ dockerHost: getDocker().host, args: ['--config', file] });
    agents.push(a);
    const view = async () => {
      const r = await a.get(`/api/v1/status/container?id=${id}`);
      return r.status === 200 ? (JSON.parse(r.text) as { labels: Record<string, string> }) : null;
    };
    const before = await waitFor(view, 20_000, 200, 'the container view');
    expect(before.labels).toEqual({ team: 'payments', 'api.token': secret });
    // served as JSON data: the page itself never carries the value as markup
    expect((await a.get('/')).text).not.toContain('<script>alert(1)');

    writeFileSync(file, yaml('team'));
    process.kill(a.pid, 'SIGHUP');
    await a.waitForLog((r) => String(r.msg).startsWith('Configuration reloaded'), 10_000);
    const containers = JSON.parse((await a.get('/containers')).text) as Array<{
      id: string;
      labels: Record<string, string>;
    }>;
    expect(containers.find((c) => c.id === id)?.labels).toEqual({ team: 'payments' });
    const after = await view();
    expect(after?.labels).toEqual({ team: 'payments' });
    // the posture series of the container carry the narrowed label set too
    const posture = (await a.get('/metrics')).text
      .split('\n')
      .filter((l) => l.startsWith('container_security_') && l.includes(`name="${name}"`));
    expect(posture.length).toBeGreaterThan(0);
    expect(posture.join('\n')).not.toContain('container_label_api_token');
    expect(posture.join('\n')).toContain('container_label_team="payments"');
    expect((await a.get(`/api/v1/status/container?id=${id}`)).text).not.toContain('alert(1)');
    expect(a.exit).toBeUndefined();
  });
});
