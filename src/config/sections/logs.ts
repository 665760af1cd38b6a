import { z } from 'zod';
import { durationSeconds, section } from './core.js';
import { processingSection } from '../../logs/processing/config.js';
import { selectionRulesSchema } from '../../docker/selection.js';

/** Log shipping: tail json-file logs, enrich, export over OTLP (or NDJSON). */
export const logsSection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Ship container logs (json-file driver). Logs go to OTLP when an OTLP logs endpoint is set, else nowhere unless logs.exporter chooses ndjson.',
    ),
  exporter: z
    .enum(['auto', 'otlp', 'ndjson'])
    .default('auto')
    .describe(
      'Where records go: otlp (the otlp section), ndjson (logs.ndjson_path), or auto (otlp when an endpoint is configured, otherwise off).',
    ),
  ndjson_path: z
    .string()
    .default('-')
    .describe('File the ndjson exporter appends to; "-" means stdout.'),
  start_at: z
    .enum(['beginning', 'end'])
    .default('beginning')
    .describe(
      "Where to start in log files that already exist at the agent's very first start (no checkpoint file yet). beginning ships what Docker still retains (at-least-once, backfill is bounded by the log rotation settings and paced by backpressure); end skips history. Containers started later are always read from their beginning.",
    ),
  label_allowlist: z
    .array(z.string().min(1))
    .default([
      'com.docker.compose.project',
      'com.docker.compose.service',
      'com.docker.swarm.service.name',
      'com.docker.swarm.task.name',
    ])
    .describe('Container labels copied onto the log resource as container.label.<key>.'),
  include_containers: selectionRulesSchema(
    'Only the logs of these containers are shipped (rules name:<glob>, image:<glob>, label:<key>=<glob>, label:<key>; * and ? wildcards); empty means every container.',
  ),
  exclude_containers: selectionRulesSchema(
    'Containers whose logs are not shipped (same rule syntax as include_containers); applied after include_containers.',
  ),
  max_line_bytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024)
    .describe(
      'Longest log line shipped (after partial-line reassembly); longer lines are truncated, flagged with harbormaster.log.truncated=true and counted.',
    ),
  partial_flush_seconds: durationSeconds(
    5,
    'A partial line (Docker splits lines at 16 KiB) whose continuation has not arrived after this long is shipped as it is.',
  ),
  poll_interval_seconds: z
    .number()
    .positive()
    .default(0.5)
    .describe(
      'How often each log file is checked for growth and rotation in addition to file-system notifications (the fallback where notifications do not work).',
    ),
  read_chunk_bytes: z
    .number()
    .int()
    .min(4096)
    .default(256 * 1024)
    .describe(
      "Size of one read from a log file. Reads up to 256 KiB go to buffers in the json-file decoder's WebAssembly memory, where its fast body loop runs; larger ones use its JavaScript loop.",
    ),
  batch_max_records: z
    .number()
    .int()
    .positive()
    .default(8192)
    .describe(
      'Most records in one export request (the OpenTelemetry Collector batch processor sends 8192).',
    ),
  batch_max_bytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024)
    .describe('Most log body bytes in one export request.'),
  batch_delay_seconds: durationSeconds(
    0.2,
    'Longest time a record waits for its batch to fill before it is sent. The rest of a backlog or burst (a full batch was just sent) goes as soon as nothing new has been queued for 10 ms.',
  ),
  queue_max_bytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024)
    .describe(
      'Memory bound of the queue between the tailers and the exporter; when it is full the tailers stop reading and unread data waits on disk.',
    ),
  retry_initial_seconds: z
    .number()
    .positive()
    .default(0.5)
    .describe(
      'First delay after a retryable export failure (doubles up to retry_max_seconds, with jitter).',
    ),
  retry_max_seconds: z
    .number()
    .positive()
    .default(30)
    .describe('Longest delay between export retries; retries never give up while the agent runs.'),
  checkpoint_fsync: z
    .boolean()
    .default(true)
    .describe(
      'Write the checkpoint files durably (O_DSYNC: each write returns once the bytes are on disk; crash and power-loss safety).',
    ),
  processing: processingSection,
});
