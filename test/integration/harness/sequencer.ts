// Order of the test files: longest first, so the parallel integration workers finish together
// instead of one worker starting a two-minute file when the other is done; the RUN_ALONE files
// (below) last.
//
// vitest orders by the durations of the last run (its results cache), but a fresh clone (CI:
// `npm ci` starts without node_modules/.vite) has none and falls back to file size, which puts
// e.g. the 60 s outage of hardening-spans (a small file) last. So: the cached duration when there
// is one and the file passed, else the duration measured on this project's CI machine below, else an estimate from
// the file size. Keep the table roughly current when a file gets much slower or faster; it only
// affects the order, never what runs.
import { statSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds per integration file, measured by a sequential `CI=true npm test` on the CI machine
 * (one worker, 2 cores). Every file is listed; a file missing here is estimated from its size.
 */
const MEASURED_SECONDS: Readonly<Record<string, number>> = {
  'metrics-parity.test.ts': 200,
  'logs.test.ts': 90,
  'log-churn.test.ts': 75,
  'hardening-spans.test.ts': 70,
  'lifecycle.test.ts': 68,
  'swarm.test.ts': 58,
  'otel-transport.test.ts': 41,
  'otel-logs.test.ts': 39,
  'image.test.ts': 34,
  'least-privilege.test.ts': 33,
  'daemon-loss.test.ts': 28,
  'log-label-limits.test.ts': 27,
  'security.test.ts': 26,
  'dashboards.test.ts': 21,
  'metrics.test.ts': 19,
  'logs-processing.test.ts': 14,
  'log-backpressure.test.ts': 14,
  'reload.test.ts': 13,
  'state-faults.test.ts': 12,
  'status-page.test.ts': 11,
  'log-loss.test.ts': 11,
  'log-behind.test.ts': 11,
  'web-security.test.ts': 10,
  'shutdown.test.ts': 10,
  'status-page-auth.test.ts': 9,
  'http-bounds.test.ts': 9,
  'harness.test.ts': 8,
  'docker-tls.test.ts': 7,
  'otel-identity.test.ts': 6,
  'doctor.test.ts': 6,
  'hardening-patterns.test.ts': 5,
  'log-compressed.test.ts': 4,
  'inventory.test.ts': 4,
  'hardening-heartbeat.test.ts': 4,
  'logs-processing-api-reader.test.ts': 3,
  'status-reload.test.ts': 2,
  'socket-proxy.test.ts': 2,
  'security-odd-shapes.test.ts': 2,
};

/**
 * Integration files that need the host to themselves, with the reason. They run last, each
 * alone: harness/index.ts holds the run's host lock (harness/host-lock.ts) exclusively for them,
 * shared for every other file, so however many workers, no other test file runs beside them
 * (`.ci/run` runs lint and the unit project beside them at nice 19: CPU-only work the idle agent
 * does not feel).
 */
export const RUN_ALONE: Readonly<Record<string, string>> = {
  'metrics-parity.test.ts':
    "asserts an idle agent's event-loop lag p99 < 50 ms over two minutes (1.9 ms alone): beside " +
    'log-churn and logs it read 34-92 ms, also with every thread of the agent at nice -10 and ' +
    'with the agent in a session of its own; its host-wide CPU and memory comparison holds ' +
    'beside other files (it reads /proc at the timestamps of the samples Prometheus used)',
};

/**
 * Groups of integration files that must not run beside each other (each may run beside any other
 * file), with the reason. A file of a group holds the group's lock (harness/host-lock.ts) while
 * it runs; the sequencer spreads a group's files out so the other worker has other files to run
 * meanwhile.
 */
export const APART: Readonly<Record<string, { files: readonly string[]; reason: string }>> = {
  'docker-churn': {
    files: ['logs.test.ts', 'log-churn.test.ts', 'log-rm.test.ts'],
    reason:
      'logs.test.ts asserts exactly-once delivery through max-file=1 rotations, which needs an ' +
      "agent that is not starved of CPU for as long as Docker takes to fill a 1 MB generation (the README's " +
      '"Rotation and loss": such a generation is never seen and cannot be counted). Beside ' +
      "log-churn's 500 --rm runs (8 at once: dockerd, containerd and runc on both cores) one " +
      'generation went unread in a CI run (12,309 lines, nothing counted)',
  },
};

/** The APART group of a file (by base name), or undefined. */
export function apartGroup(file: string): string | undefined {
  const base = path.basename(file);
  return Object.entries(APART).find(([, g]) => g.files.includes(base))?.[0];
}

/** True for a file of RUN_ALONE (by base name). */
export function runsAlone(file: string): boolean {
  return Object.hasOwn(RUN_ALONE, path.basename(file));
}

/** Bytes of test source per estimated second, for files neither cached nor in the table. */
const BYTES_PER_SECOND = 400;

export class LongestFirstSequencer extends BaseSequencer {
  private seconds(spec: TestSpecification): number {
    const rel = path.relative(this.ctx.config.root, spec.moduleId);
    const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${rel}`);
    // a failed file's time says nothing (a file that failed at import took a second)
    if (cached && cached.duration > 0 && !cached.failed) return cached.duration / 1000;
    const measured = MEASURED_SECONDS[path.basename(spec.moduleId)];
    if (spec.project.name === 'integration' && measured !== undefined) return measured;
    try {
      return statSync(spec.moduleId).size / BYTES_PER_SECOND;
    } catch {
      return 0;
    }
  }

  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files); // groupOrder and project order stay as vitest has them
    const rank = new Map(sorted.map((s, i) => [s, i]));
    const weight = new Map(sorted.map((s) => [s, this.seconds(s)]));
    return spreadApart(
      [...sorted].sort((a, b) => {
        const group = a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder;
        if (group !== 0) return group;
        if (a.project.name !== b.project.name) return (rank.get(a) ?? 0) - (rank.get(b) ?? 0);
        const alone = Number(runsAlone(a.moduleId)) - Number(runsAlone(b.moduleId));
        if (alone !== 0) return alone; // RUN_ALONE files last (see host-lock.ts)
        return (
          (weight.get(b) ?? 0) - (weight.get(a) ?? 0) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0)
        );
      }),
      (s) => weight.get(s) ?? 0,
      // the integration project's workers besides the one running a group's file
      Math.max(
        1,
        (sorted.find((s) => s.project.name === 'integration')?.project.config.maxWorkers ?? 2) - 1,
      ),
    );
  }
}

/**
 * Moves the files of each APART group apart in an order: the first stays where it is; each next
 * one comes only after other files adding up to the previous one's duration times `others`, the
 * workers besides the group's (what they run meanwhile), or at the end of the files that do not
 * run alone.
 */
export function spreadApart<T extends { moduleId: string }>(
  order: readonly T[],
  seconds: (s: T) => number,
  others = 1,
): T[] {
  const out: T[] = [];
  const debt = new Map<string, number>();
  const pending = new Map<string, T[]>();
  const release = (): void => {
    for (const [g, list] of pending) {
      while (list.length > 0 && (debt.get(g) ?? 0) <= 0) {
        const next = list.shift()!;
        out.push(next);
        debt.set(g, seconds(next) * others);
      }
    }
  };
  for (const s of order) {
    const g = runsAlone(s.moduleId) ? undefined : apartGroup(s.moduleId);
    if (runsAlone(s.moduleId)) {
      for (const list of pending.values()) out.push(...list.splice(0));
      out.push(s);
      continue;
    }
    if (g === undefined) {
      out.push(s);
      for (const [k, v] of debt) debt.set(k, v - seconds(s));
      release();
      continue;
    }
    if ((debt.get(g) ?? 0) > 0) {
      const list = pending.get(g) ?? [];
      list.push(s);
      pending.set(g, list);
      continue;
    }
    out.push(s);
    debt.set(g, seconds(s) * others);
  }
  for (const list of pending.values()) out.push(...list.splice(0));
  return out;
}
