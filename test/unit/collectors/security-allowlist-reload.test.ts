// The posture series carry the container_label_* of metrics.label_allowlist like every other
// container family; a SIGHUP that narrows the allowlist must drop the label from them at the next
// scrape (labels routinely hold secrets), and one that widens it must add it.
import { describe, expect, it } from 'vitest';
import { SecurityMetrics } from '../../../src/collectors/security.js';
import { securityFromInspect } from '../../../src/docker/inventory.js';
import { StaticSource, containerInfo, silentLogger } from './helpers.js';

describe('posture series after the label allowlist changes', () => {
  it('drop a label the new allowlist leaves out, and add one it lets in', () => {
    const info = containerInfo({
      labels: { team: 'payments', 'api.token': 'hunter2' },
      security: securityFromInspect({ Id: 'x', HostConfig: { Privileged: true } }),
    });
    let allowlist: readonly string[] = ['team', 'api.token'];
    const m = new SecurityMetrics({
      inventory: new StaticSource([info]),
      logger: silentLogger,
      labelAllowlist: () => allowlist,
    });
    m.start();
    const privileged = () =>
      m
        .render()
        .split('\n')
        .find((l) => l.startsWith('container_security_privileged{'));
    expect(privileged()).toContain('container_label_api_token="hunter2"');
    expect(privileged()).toContain('container_label_team="payments"');
    allowlist = ['team'];
    expect(m.render()).not.toContain('hunter2');
    expect(privileged()).toContain('container_label_team="payments"');
    allowlist = [];
    expect(m.render()).not.toContain('container_label_');
    allowlist = ['api.token'];
    expect(privileged()).toContain('container_label_api_token="hunter2"');
  });
});
