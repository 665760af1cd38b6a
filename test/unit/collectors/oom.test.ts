import { describe, expect, it } from 'vitest';
import { OomTracker } from '../../../src/collectors/oom.js';

const START = 1_700_000_000_000;

describe('OomTracker', () => {
  it('counts a kill seen by both the event and the cgroup once, and adds up runs', () => {
    const t = new OomTracker(() => START);
    t.track('a', START + 1000);
    t.noteCgroup('a', START + 1000, 0);
    t.noteEvent('a', START + 1000);
    t.noteCgroup('a', START + 1000, 1);
    expect(t.total('a')).toBe(1);
    t.noteCgroup('a', START + 5000, 0); // restarted: new cgroup
    t.noteCgroup('a', START + 5000, 2); // two child processes killed, no event
    expect(t.total('a')).toBe(3);
  });

  it('does not count kills from before the agent started again after an agent restart', () => {
    // first agent: the run started at START+1000 and had one kill
    const first = new OomTracker(() => START);
    first.noteCgroup('a', START + 1000, 0);
    first.noteCgroup('a', START + 1000, 1);
    expect(first.total('a')).toBe(1);
    // the agent restarts later; the same run's cgroup still says 1
    const second = new OomTracker(() => START + 60_000);
    second.noteCgroup('a', START + 1000, 1);
    expect(second.total('a')).toBe(0);
    second.noteCgroup('a', START + 1000, 2); // a new kill after the agent restart
    expect(second.total('a')).toBe(1);
  });
});
