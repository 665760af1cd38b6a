import { describe, expect, it } from 'vitest';
import { eventsSince, isReplay } from '../../../src/docker/inventory.js';

const T0 = 1_700_000_000; // a daemon clock reading, in seconds

describe('eventsSince (Docker events `since` for a subscription)', () => {
  it("first subscription: the agent's start on the daemon's clock, to the millisecond", () => {
    // the daemon's clock says T0 + 0.5 s; the agent started 2.25 s ago (monotonic)
    expect(
      eventsSince({
        daemonNowMs: T0 * 1000 + 500,
        lastEventSec: 0,
        lastEventAgoMs: 0,
        startedAgoMs: 2250,
      }),
    ).toBe(`${T0 - 2}.250000000`);
  });

  it('later: the second of the last event handled, however long ago it was handled', () => {
    for (const ago of [0, 300, 1500, 3_600_000])
      expect(
        eventsSince({
          daemonNowMs: (T0 + 1) * 1000 + 200 + ago,
          lastEventSec: T0,
          lastEventAgoMs: ago,
          startedAgoMs: ago + 60_000,
        }),
      ).toBe(`${T0}.000000000`);
  });

  it('a daemon clock stepped back: where the last event is on its clock now, a second early', () => {
    // the last event was handled at T0 (old clock) 10 s ago; meanwhile the clock went back 1 h,
    // so Docker reads T0 - 3600 + 10 now: since T0 would skip the next hour of events
    expect(
      eventsSince({
        daemonNowMs: (T0 - 3600 + 10) * 1000,
        lastEventSec: T0,
        lastEventAgoMs: 10_000,
        startedAgoMs: 100_000,
      }),
    ).toBe(`${T0 - 3601}.000000000`);
    // a clock that went forward needs nothing: events after the step are later still
    expect(
      eventsSince({
        daemonNowMs: (T0 + 3600 + 10) * 1000,
        lastEventSec: T0,
        lastEventAgoMs: 10_000,
        startedAgoMs: 100_000,
      }),
    ).toBe(`${T0}.000000000`);
  });

  it('never asks for a time before 1970 or for a negative one', () => {
    expect(
      eventsSince({ daemonNowMs: 500, lastEventSec: 0, lastEventAgoMs: 0, startedAgoMs: 10_000 }),
    ).toBe('1.000000000');
  });
});

describe('isReplay (an event from before the subscription, not live)', () => {
  const sub = T0 * 1000; // the daemon's clock at /info
  it('an event older than the daemon clock at /info is a replay, live or early', () => {
    for (const early of [true, false]) {
      expect(isReplay({ atMs: sub - 1, subscribedAtMs: sub, sinceSubscribedMs: 50, early })).toBe(
        true,
      );
      expect(isReplay({ atMs: sub + 10, subscribedAtMs: sub, sinceSubscribedMs: 50, early })).toBe(
        false,
      );
    }
    // no time at all: never called a replay
    expect(isReplay({ atMs: 0, subscribedAtMs: sub, sinceSubscribedMs: 0, early: true })).toBe(
      false,
    );
  });

  it('after the daemon clock stepped back: an early event stamped ahead of the clock is a replay', () => {
    // written an hour ahead of the clock as it reads now: before the step
    expect(
      isReplay({ atMs: sub + 3_600_000, subscribedAtMs: sub, sinceSubscribedMs: 300, early: true }),
    ).toBe(true);
    // the same time on a live event (after the re-list) is a clock that stepped forward: live
    expect(
      isReplay({
        atMs: sub + 3_600_000,
        subscribedAtMs: sub,
        sinceSubscribedMs: 300,
        early: false,
      }),
    ).toBe(false);
    // an early event within the clock as it reads now (a re-list of 1.5 s) is live
    expect(
      isReplay({ atMs: sub + 1_400, subscribedAtMs: sub, sinceSubscribedMs: 1_500, early: true }),
    ).toBe(false);
  });
});
