import { z } from 'zod';
import { durationSeconds, section } from './core.js';

/** Metric groups that can be switched off as a whole (cAdvisor's `--disable_metrics` style). */
export const METRIC_GROUPS = [
  'cpu',
  'cpu_cfs',
  'memory',
  'disk_io',
  'network',
  'processes',
  'pressure',
  'spec',
  'engine',
  'engine_disk_usage',
  'host',
] as const;

export const metricsSection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe('Serve per-container (container_*), engine (docker_engine_*) and host metrics.'),
  min_interval_seconds: durationSeconds(
    1,
    'Minimum time between two cgroup collections; scrapes within it are served from the last one, so several scrapers do not multiply the cost.',
  ),
  label_allowlist: z
    .array(z.string().min(1))
    .default([
      'com.docker.compose.project',
      'com.docker.compose.service',
      'com.docker.swarm.service.name',
      'com.docker.swarm.task.name',
    ])
    .describe(
      'Container labels copied onto every container_* series as container_label_<sanitized key>; anything else is left out to keep cardinality bounded.',
    ),
  disabled_metrics: z
    .array(
      z
        .string()
        .refine(
          (s) =>
            (METRIC_GROUPS as readonly string[]).includes(s) ||
            /^(container|docker_engine|harbormaster)_[a-z0-9_]+$/.test(s),
          `expected a metric group (${METRIC_GROUPS.join(', ')}) or a container_*, docker_engine_* or harbormaster_* family name`,
        ),
    )
    .default([])
    .describe(
      `Metric groups (${METRIC_GROUPS.join(', ')}) or exact metric family names that are not collected or served.`,
    ),
  include_loopback: z
    .boolean()
    .default(false)
    .describe(
      'Also report the loopback interface (lo) of each container network namespace in container_network_*.',
    ),
  engine_interval_seconds: durationSeconds(
    30,
    'How often image, volume and network counts are fetched from the Docker daemon (at least 1).',
    1,
  ),
  engine_disk_usage_interval_seconds: durationSeconds(
    300,
    'How often the (expensive) `docker system df` data is fetched from /system/df; 0 disables it.',
  ),
  host_interval_seconds: durationSeconds(
    60,
    'How often free space of the filesystem holding the Docker data root is measured (at least 1).',
    1,
  ),
});
