import { defineConfig } from 'vitest/config';

// Unit tests run first and finish before the integration project starts (sequence.groupOrder):
// the two never compete for this machine's cores, so integration timings do not depend on
// whether unit tests happen to run alongside. Integration files run one at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
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
          fileParallelism: false,
          pool: 'forks',
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
