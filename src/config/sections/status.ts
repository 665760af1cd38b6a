import { z } from 'zod';
import { durationSeconds, section } from './core.js';

/** The built-in status page (`/`) and its JSON (`/api/v1/status`). */
export const statusSection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Serve the status page at / and the status JSON at /api/v1/status (behind the same TLS and auth as /metrics).',
    ),
  refresh_seconds: durationSeconds(3, 'How often the status page refreshes itself in place.', 1),
  history_minutes: z
    .number()
    .int()
    .min(1)
    .max(180)
    .default(15)
    .describe(
      'How far back the container view charts CPU and memory (kept in memory: about 8 bytes per container per sample).',
    ),
  sample_interval_seconds: durationSeconds(
    15,
    'How often CPU and memory are sampled for the container view (a scrape within the interval is reused).',
    1,
  ),
});
