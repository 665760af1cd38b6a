import { describe, expect, it } from 'vitest';
import type { ApiContainerInspect } from '../../../src/docker/api-types.js';
import { fromInspect } from '../../../src/docker/inventory.js';

const ID = 'b'.repeat(64);

function inspect(status: string, health?: string, test?: string[]): ApiContainerInspect {
  return {
    Id: ID,
    Name: '/web',
    State: { Status: status, ...(health ? { Health: { Status: health, FailingStreak: 0 } } : {}) },
    Config: { Image: 'web:1', ...(test ? { Healthcheck: { Test: test } } : {}) },
  };
}

describe('fromInspect health', () => {
  it("reports a configured health check the daemon has not run yet as 'starting', not 'none'", () => {
    // the inspect made on the `create` event: Docker sets State.Health only at start
    expect(
      fromInspect(inspect('created', undefined, ['CMD-SHELL', 'test -f /tmp/ok']), 'cgroupfs')
        .health,
    ).toBe('starting');
    expect(fromInspect(inspect('running', undefined, ['CMD', 'true']), 'cgroupfs').health).toBe(
      'starting',
    );
  });

  it("keeps 'none' for containers without a health check, or with HEALTHCHECK NONE, or no longer live", () => {
    expect(fromInspect(inspect('running'), 'cgroupfs').health).toBe('none');
    expect(fromInspect(inspect('running', undefined, ['NONE']), 'cgroupfs').health).toBe('none');
    expect(fromInspect(inspect('exited', undefined, ['CMD', 'true']), 'cgroupfs').health).toBe(
      'none',
    );
  });

  it("takes the daemon's status when there is one", () => {
    expect(fromInspect(inspect('running', 'unhealthy', ['CMD', 'true']), 'cgroupfs').health).toBe(
      'unhealthy',
    );
    expect(fromInspect(inspect('exited', 'healthy', ['CMD', 'true']), 'cgroupfs').health).toBe(
      'healthy',
    );
  });
});
