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

  it("merges a late event for the run before the current one with that run's count", () => {
    // Docker's oom event for run A arrives after the restart policy started run B
    const t = new OomTracker(() => START);
    t.noteCgroup('a', START + 1000, 0);
    t.noteCgroup('a', START + 1000, 1); // the cgroup counted A's kill
    t.noteCgroup('a', START + 5000, 0); // B
    expect(t.total('a')).toBe(1);
    t.noteEvent('a', START + 1000);
    expect(t.total('a')).toBe(1); // the same kill, not a second one
    t.noteCgroup('a', START + 5000, 1); // B's own kill
    expect(t.total('a')).toBe(2);
    // A's cgroup vanished before any read saw its kill: the late event is that kill
    const u = new OomTracker(() => START);
    u.noteCgroup('b', START + 1000, 0);
    u.noteCgroup('b', START + 5000, 0);
    u.noteEvent('b', START + 1000);
    expect(u.total('b')).toBe(1);
    u.noteCgroup('b', START + 5000, 0);
    expect(u.total('b')).toBe(1);
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

  it('counts the kernel kills, not the OOM notifications, when the cgroup counter is known', () => {
    // cgroup v1: dockerd emits one `oom` event per OOM notification, several per kill
    const t = new OomTracker(() => START);
    t.noteCgroup('a', START + 1000, 0);
    for (let i = 0; i < 5; i++) t.noteEvent('a', START + 1000);
    expect(t.total('a')).toBe(1); // the events say "at least one" before the next read
    t.noteCgroup('a', START + 1000, 1);
    for (let i = 0; i < 5; i++) t.noteEvent('a', START + 1000);
    expect(t.total('a')).toBe(1);
    t.noteCgroup('a', START + 1000, 2);
    expect(t.total('a')).toBe(2);
  });

  it('counts a killed run whose cgroup vanished before the next read once', () => {
    const t = new OomTracker(() => START);
    t.noteCgroup('a', START + 1000, 0);
    t.noteEvent('a', START + 1000);
    t.noteEvent('a', START + 1000);
    // the container restarts; the killed run's cgroup was never read again
    t.noteCgroup('a', START + 9000, 0);
    expect(t.total('a')).toBe(1);
  });

  it('counts each event as a kill where no cgroup counter is readable', () => {
    const t = new OomTracker(() => START);
    t.track('a', START + 1000);
    t.noteEvent('a', START + 1000);
    t.noteEvent('a', START + 1000);
    expect(t.total('a')).toBe(2);
  });

  it("counts Docker's OOMKilled verdict as a kill when no event and no cgroup reading saw it, once", () => {
    // a run killed 60 ms after its start: the cgroup is gone before a read, no `oom` event came
    const t = new OomTracker(() => START);
    t.noteCgroup('other', START + 10, 0); // this host has a cgroup counter
    t.track('a', START + 1000);
    expect(t.total('a')).toBe(0);
    t.noteVerdict('a', START + 1000);
    t.noteVerdict('a', START + 1000); // every later inspect says it again
    expect(t.total('a')).toBe(1);
    t.noteEvent('a', START + 1000); // the event arrives after all: the same kill
    expect(t.total('a')).toBe(1);
    // the verdict for the run before the current one merges with that run's count
    t.noteCgroup('a', START + 5000, 0);
    t.noteVerdict('a', START + 1000);
    expect(t.total('a')).toBe(1);
    const u = new OomTracker(() => START);
    u.noteCgroup('b', START + 1000, 0);
    u.noteCgroup('b', START + 5000, 0); // run B began before A's verdict was read
    u.noteVerdict('b', START + 1000);
    expect(u.total('b')).toBe(1);
    // a run from before the agent started is not counted (as for events and cgroup counters)
    u.noteVerdict('c', START - 1000);
    expect(u.total('c')).toBe(0);
  });
});
