import { z } from 'zod';
import { durationSeconds, section } from './core.js';

/** Container lifecycle: restart/exit/OOM/state/health metrics and container runs as OTLP traces. */
export const lifecycleSection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Follow container lifecycle events: container_restarts_total, exit, OOM, state and health metrics.',
    ),
  traces_enabled: z
    .boolean()
    .default(true)
    .describe(
      'Export each container run as a span over OTLP (only when an OTLP traces endpoint is configured).',
    ),
  removed_grace_seconds: durationSeconds(
    60,
    "How long a destroyed container's lifecycle series stay served (so the last values get scraped) before they are deleted.",
  ),
  traces_batch_delay_seconds: z
    .number()
    .positive()
    .default(1)
    .describe('How long finished run spans are batched before an OTLP export request is sent.'),
  traces_spool_max_bytes: z
    .number()
    .int()
    .min(0)
    .default(16 * 1024 * 1024)
    .describe(
      'Run spans that the OTLP receiver does not take are kept in <state_dir>/spans up to this many bytes and sent when it is back (surviving agent restarts); beyond it they are dropped and counted in harbormaster_otlp_spans_dropped_total. 0: no spool.',
    ),
  traces_retry_max_seconds: durationSeconds(
    300,
    'How long a batch of run spans is retried while the receiver is unavailable (UNAVAILABLE, 503, connection refused...) before it is dropped and counted.',
  ),
});
