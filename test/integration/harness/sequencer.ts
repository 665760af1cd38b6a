// Order of the test files: longest first, so the parallel integration workers finish together
// instead of one worker starting a two-minute file when the other is done.
//
// vitest orders by the durations of the last run (its results cache), but a fresh clone (CI:
// `npm ci` starts without node_modules/.vite) has none and falls back to file size, which puts
// e.g. the 60 s outage of hardening-spans (a small file) last. So: the cached duration when there
// is one, else the duration measured on this project's CI machine below, else an estimate from
// the file size. Keep the table roughly current when a file gets much slower or faster; it only
// affects the order, never what runs.
import { statSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Seconds per integration file, measured by a sequential `CI=true npm test` on the CI machine. */
const MEASURED_SECONDS: Readonly<Record<string, number>> = {
  'metrics-parity.test.ts': 290,
  'logs.test.ts': 190,
  'log-churn.test.ts': 185,
  'lifecycle.test.ts': 110,
  'hardening-spans.test.ts': 68,
  'swarm.test.ts': 64,
  'image.test.ts': 61,
  'otel-transport.test.ts': 42,
  'otel-logs.test.ts': 40,
  'least-privilege.test.ts': 35,
  'state-faults.test.ts': 25,
  'dashboards.test.ts': 22,
  'log-behind.test.ts': 22,
  'shutdown.test.ts': 18,
  'reload.test.ts': 17,
};

/** Bytes of test source per estimated second, for files neither cached nor in the table. */
const BYTES_PER_SECOND = 400;

export class LongestFirstSequencer extends BaseSequencer {
  private seconds(spec: TestSpecification): number {
    const rel = path.relative(this.ctx.config.root, spec.moduleId);
    const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${rel}`);
    if (cached && cached.duration > 0) return cached.duration / 1000;
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
    return [...sorted].sort((a, b) => {
      const group = a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder;
      if (group !== 0) return group;
      if (a.project.name !== b.project.name) return (rank.get(a) ?? 0) - (rank.get(b) ?? 0);
      return (weight.get(b) ?? 0) - (weight.get(a) ?? 0) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0);
    });
  }
}
