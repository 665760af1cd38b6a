import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/integration/harness/sequencer.js';

// Unit tests run first and finish before the integration project starts (sequence.groupOrder):
// the two never compete for this machine's cores, so integration timings do not depend on
// whether unit tests happen to run alongside. (.ci/run runs the projects separately: the unit
// project at nice 19 beside the RUN_ALONE file only, see beside_alone_start there.)
//
// Integration files run in INTEGRATION_WORKERS workers (default 3: three files at a time; 1 runs
// them one by one). Each file has a private dockerd of its own (harness/index.ts: own socket, data
// root, containerd namespace and cgroup parent, destroyed after the file), so files never see
// each other's containers, and the RUN_ALONE files (sequencer.ts) run with no other test file
// beside them. Most files wait on the daemon, a receiver's outage or a container's output rather
// than compute: on the 2-core CI machine two at a time cut the integration project from about 21
// to about 14 minutes, three at a time (2026-12-02, after the log tests stopped re-reading every
// received record per poll) to 10.6 minutes, the cores then busy 90-100 % outside the alone file.
// An engine given by HARBORMASTER_TEST_DOCKER_HOST is one shared engine: the files then run one
// at a time.
const INTEGRATION_WORKERS = process.env.HARBORMASTER_TEST_DOCKER_HOST
  ? 1
  : Math.max(1, Number(process.env.HARBORMASTER_TEST_INTEGRATION_WORKERS ?? '3') || 3);

export default defineConfig({
  test: {
    // longest files first, so the parallel workers finish together (see the sequencer's header)
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // a few unit tests spawn the CLI through tsx (a compile per spawn): seconds each, and
          // several times that on a loaded 2-core machine
          testTimeout: 60_000,
          // vitest's default is cores - 1: one file at a time on this 2-core machine
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/harness/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          maxWorkers: INTEGRATION_WORKERS,
          pool: 'forks',
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
