import { z } from 'zod';
import { durationSeconds, section } from './core.js';
import { selectionRulesSchema } from '../../docker/selection.js';

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
  'fs_usage',
  'root',
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
      'com.docker.stack.namespace',
      'com.docker.swarm.node.id',
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
            /^(container|docker_engine|harbormaster|machine)_[a-z0-9_]+$/.test(s),
          `expected a metric group (${METRIC_GROUPS.join(', ')}) or a container_*, docker_engine_*, harbormaster_* or machine_* family name`,
        ),
    )
    .default([])
    .describe(
      `Metric groups (${METRIC_GROUPS.join(', ')}) or exact metric family names that are not collected or served.`,
    ),
  include_containers: selectionRulesSchema(
    'Only these containers get container_* series (rules name:<glob>, image:<glob>, label:<key>=<glob>, label:<key>; * and ? wildcards; image rules also match the image without its tag); empty means every container. A container label harbormaster.metrics.enabled=false leaves one container out as well.',
  ),
  exclude_containers: selectionRulesSchema(
    'Containers that get no container_* series and cost no cgroup reads (same rule syntax as include_containers); applied after include_containers.',
  ),
  per_cpu: z
    .boolean()
    .default(false)
    .describe(
      'Also serve container_cpu_usage_seconds_total per CPU (cpu="cpu00"...; cgroup v1 and the host\'s id="/" only, as cAdvisor\'s percpu metrics): one series per CPU and container.',
    ),
  fs_interval_seconds: durationSeconds(
    60,
    "How often the size of each container's writable layer (container_fs_usage_bytes) is measured by walking its directory under docker_root; scrapes serve the last measurement. 0 disables it.",
  ),
  fs_walk_budget_seconds: z
    .number()
    .positive()
    .default(10)
    .describe(
      'Most wall time one writable-layer refresh may take; containers not reached keep their last size and are measured first at the next refresh.',
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
