// Generates the Grafana dashboards in dashboards/ (run: npm run dashboards). The JSON files are
// committed; a unit test checks they match this generator and validates them. The output is typed
// against Grafana's own schema (@grafana/schema): a field Grafana would reject fails the build.
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/schema';

export interface Target {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
}

export interface PanelSpec {
  title: string;
  type: 'timeseries' | 'stat' | 'table' | 'bargauge';
  unit?: string;
  targets: Target[];
  w?: number;
  h?: number;
  description?: string;
  max?: number;
  /** A data link on every series: to the container dashboard for the series' container. */
  containerLink?: boolean;
}

export interface DashboardSpec {
  file: string;
  /** Stable uid: links and bookmarks survive a re-import. */
  uid: string;
  title: string;
  description: string;
  tags: string[];
  variables: Array<{
    name: string;
    label: string;
    query: string;
    multi?: boolean;
    includeAll?: boolean;
  }>;
  rows: Array<{ title: string; panels: PanelSpec[] }>;
  /** Links to other dashboards (time range and variables kept). */
  links: Array<{ title: string; uid: string }>;
}

const DS = { type: 'prometheus', uid: '${datasource}' };
/** The compose project (or stack) of a container, as the default label allowlist exports it. */
export const PROJECT_LABEL = 'container_label_com_docker_compose_project';
export const UIDS = {
  overview: 'harbormaster-overview',
  container: 'harbormaster-container',
  agent: 'harbormaster-agent',
  security: 'harbormaster-security',
} as const;
/** Every series of an agent: the job(s) and host(s) picked in the variables. */
const sel = 'job=~"$job", instance=~"$instance"';
/** Per-container series of the picked compose project(s). */
const psel = `${sel}, ${PROJECT_LABEL}=~"$project"`;
const csel = `${sel}, name=~"$container"`;

const JOB_VAR = {
  name: 'job',
  label: 'Job',
  query: 'label_values(harbormaster_build_info, job)',
  multi: true,
  includeAll: true,
};
const INSTANCE_VAR = {
  name: 'instance',
  label: 'Host',
  query: 'label_values(harbormaster_build_info{job=~"$job"}, instance)',
  multi: true,
  includeAll: true,
};
const PROJECT_VAR = {
  name: 'project',
  label: 'Compose project / stack',
  query: `label_values(container_state{${sel}}, ${PROJECT_LABEL})`,
  multi: true,
  includeAll: true,
};

export const DASHBOARDS: DashboardSpec[] = [
  {
    file: 'docker-host-overview.json',
    uid: UIDS.overview,
    title: 'Docker host overview (Harbormaster)',
    description:
      'Containers by state, top CPU and memory, restarts, OOM kills, health and Docker disk use.',
    tags: ['harbormaster', 'docker'],
    variables: [JOB_VAR, INSTANCE_VAR, PROJECT_VAR],
    links: [
      { title: 'Container detail', uid: UIDS.container },
      { title: 'Harbormaster agent', uid: UIDS.agent },
    ],
    rows: [
      {
        title: 'Containers',
        panels: [
          {
            title: 'Containers by state',
            type: 'stat',
            w: 12,
            targets: [
              { expr: `sum by (state) (container_state{${psel}})`, legendFormat: '{{state}}' },
            ],
          },
          {
            title: 'Unhealthy containers',
            type: 'stat',
            w: 6,
            targets: [
              { expr: `sum(container_health_state{${psel}, state="unhealthy"}) or vector(0)` },
            ],
          },
          {
            title: 'Engine',
            type: 'table',
            w: 6,
            targets: [{ expr: `docker_engine_info{${sel}}`, instant: true }],
          },
        ],
      },
      {
        title: 'Resources',
        panels: [
          {
            title: 'Top 10 CPU (cores)',
            containerLink: true,
            type: 'timeseries',
            unit: 'short',
            w: 12,
            targets: [
              {
                expr: `topk(10, sum by (instance, name) (rate(container_cpu_usage_seconds_total{${psel}, cpu="total"}[$__rate_interval])))`,
                legendFormat: '{{name}}',
              },
            ],
          },
          {
            title: 'Top 10 memory working set',
            containerLink: true,
            type: 'timeseries',
            unit: 'bytes',
            w: 12,
            targets: [
              {
                expr: `topk(10, sum by (instance, name) (container_memory_working_set_bytes{${psel}}))`,
                legendFormat: '{{name}}',
              },
            ],
          },
        ],
      },
      {
        title: 'Trouble',
        panels: [
          {
            title: 'Restarts (last hour)',
            containerLink: true,
            type: 'bargauge',
            w: 8,
            targets: [
              {
                expr: `sort_desc(sum by (instance, name) (increase(container_restarts_total{${psel}}[1h])) > 0)`,
                legendFormat: '{{name}}',
                instant: true,
              },
            ],
          },
          {
            title: 'OOM kills (last hour)',
            containerLink: true,
            type: 'bargauge',
            w: 8,
            targets: [
              {
                expr: `sort_desc(sum by (instance, name) (increase(container_oom_events_total{${psel}}[1h])) > 0)`,
                legendFormat: '{{name}}',
                instant: true,
              },
            ],
          },
          {
            title: 'Unhealthy',
            type: 'table',
            w: 8,
            targets: [
              { expr: `container_health_state{${psel}, state="unhealthy"} == 1`, instant: true },
            ],
          },
        ],
      },
      {
        title: 'Docker disk',
        panels: [
          {
            title: 'Docker data root used',
            type: 'timeseries',
            unit: 'percentunit',
            max: 1,
            w: 12,
            targets: [
              {
                expr: `1 - docker_engine_data_root_free_bytes{${sel}} / docker_engine_data_root_size_bytes{${sel}}`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Docker disk usage by type',
            type: 'timeseries',
            unit: 'bytes',
            w: 12,
            targets: [
              {
                expr: `sum by (instance, type) (docker_engine_disk_usage_bytes{${sel}})`,
                legendFormat: '{{instance}} {{type}}',
              },
            ],
          },
        ],
      },
    ],
  },
  {
    file: 'container-detail.json',
    uid: UIDS.container,
    title: 'Container detail (Harbormaster)',
    description:
      'One container: CPU against its limit and throttling, memory against its limit, network, block I/O, restarts, exit codes and health.',
    tags: ['harbormaster', 'docker', 'container'],
    variables: [
      JOB_VAR,
      { ...INSTANCE_VAR, multi: false, includeAll: false },
      PROJECT_VAR,
      {
        name: 'container',
        label: 'Container',
        query: `label_values(container_state{${psel}}, name)`,
      },
    ],
    links: [
      { title: 'Docker host overview', uid: UIDS.overview },
      { title: 'Harbormaster agent', uid: UIDS.agent },
    ],
    rows: [
      {
        title: 'CPU',
        panels: [
          {
            title: 'CPU usage and limit (cores)',
            type: 'timeseries',
            w: 12,
            targets: [
              {
                expr: `sum by (name) (rate(container_cpu_usage_seconds_total{${csel}, cpu="total"}[$__rate_interval]))`,
                legendFormat: 'usage',
              },
              {
                expr: `container_spec_cpu_quota{${csel}} / container_spec_cpu_period{${csel}}`,
                legendFormat: 'limit',
              },
            ],
          },
          {
            title: 'CPU throttling',
            type: 'timeseries',
            unit: 'percentunit',
            w: 12,
            targets: [
              {
                expr: `rate(container_cpu_cfs_throttled_periods_total{${csel}}[$__rate_interval]) / rate(container_cpu_cfs_periods_total{${csel}}[$__rate_interval])`,
                legendFormat: 'throttled periods',
              },
            ],
          },
        ],
      },
      {
        title: 'Memory',
        panels: [
          {
            title: 'Working set and limit',
            type: 'timeseries',
            unit: 'bytes',
            w: 12,
            targets: [
              { expr: `container_memory_working_set_bytes{${csel}}`, legendFormat: 'working set' },
              { expr: `container_spec_memory_limit_bytes{${csel}} > 0`, legendFormat: 'limit' },
            ],
          },
          {
            title: 'Memory breakdown',
            type: 'timeseries',
            unit: 'bytes',
            w: 12,
            targets: [
              { expr: `container_memory_rss{${csel}}`, legendFormat: 'rss' },
              { expr: `container_memory_cache{${csel}}`, legendFormat: 'cache' },
            ],
          },
        ],
      },
      {
        title: 'I/O',
        panels: [
          {
            title: 'Network',
            type: 'timeseries',
            unit: 'Bps',
            w: 12,
            description: 'Empty for containers with --network none or host.',
            targets: [
              {
                expr: `sum by (interface) (rate(container_network_receive_bytes_total{${csel}}[$__rate_interval]))`,
                legendFormat: 'rx {{interface}}',
              },
              {
                expr: `-sum by (interface) (rate(container_network_transmit_bytes_total{${csel}}[$__rate_interval]))`,
                legendFormat: 'tx {{interface}}',
              },
            ],
          },
          {
            title: 'Block I/O',
            type: 'timeseries',
            unit: 'Bps',
            w: 12,
            targets: [
              {
                expr: `sum by (device) (rate(container_fs_reads_bytes_total{${csel}}[$__rate_interval]))`,
                legendFormat: 'read {{device}}',
              },
              {
                expr: `-sum by (device) (rate(container_fs_writes_bytes_total{${csel}}[$__rate_interval]))`,
                legendFormat: 'write {{device}}',
              },
            ],
          },
        ],
      },
      {
        title: 'Lifecycle',
        panels: [
          {
            title: 'Restarts',
            type: 'timeseries',
            w: 8,
            targets: [
              {
                expr: `increase(container_restarts_total{${csel}}[$__rate_interval])`,
                legendFormat: 'restarts',
              },
            ],
          },
          {
            title: 'Last exit code',
            type: 'timeseries',
            w: 8,
            targets: [
              { expr: `container_last_exit_code{${csel}}`, legendFormat: 'exit code' },
              { expr: `container_last_exit_oom_killed{${csel}}`, legendFormat: 'OOM killed' },
            ],
          },
          {
            title: 'Health',
            type: 'timeseries',
            w: 8,
            targets: [
              { expr: `container_health_state{${csel}} == 1`, legendFormat: '{{state}}' },
              { expr: `container_health_failing_streak{${csel}}`, legendFormat: 'failing streak' },
            ],
          },
        ],
      },
    ],
  },
  {
    file: 'harbormaster-agent.json',
    uid: UIDS.agent,
    title: 'Harbormaster agent health',
    description:
      "The agent's own cost and its log pipeline: collection cost, lines in and out, drops, export errors, bytes behind.",
    tags: ['harbormaster', 'agent'],
    variables: [JOB_VAR, INSTANCE_VAR],
    links: [{ title: 'Docker host overview', uid: UIDS.overview }],
    rows: [
      {
        title: 'Agent',
        panels: [
          {
            title: 'Agent CPU (cores)',
            type: 'timeseries',
            w: 8,
            targets: [
              {
                expr: `rate(process_cpu_seconds_total{${sel}}[$__rate_interval])`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Agent memory (RSS)',
            type: 'timeseries',
            unit: 'bytes',
            w: 8,
            targets: [
              {
                expr: `process_resident_memory_bytes{${sel}}`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Last collection time',
            type: 'timeseries',
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `harbormaster_metrics_collection_duration_seconds{${sel}}`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Docker daemon reachable',
            type: 'stat',
            w: 8,
            targets: [{ expr: `harbormaster_docker_up{${sel}}`, legendFormat: '{{instance}}' }],
          },
          {
            title: 'Daemon reconnects',
            type: 'timeseries',
            w: 8,
            targets: [
              {
                expr: `increase(harbormaster_docker_reconnects_total{${sel}}[$__rate_interval])`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Docker events by type',
            type: 'timeseries',
            w: 8,
            targets: [
              {
                expr: `sum by (type) (rate(docker_engine_events_total{${sel}}[$__rate_interval]))`,
                legendFormat: '{{type}}',
              },
            ],
          },
        ],
      },
      {
        title: 'Logs',
        panels: [
          {
            title: 'Log lines read and records exported',
            type: 'timeseries',
            unit: 'ops',
            w: 12,
            targets: [
              {
                expr: `sum by (instance) (rate(harbormaster_log_lines_read_total{${sel}}[$__rate_interval]))`,
                legendFormat: 'read {{instance}}',
              },
              {
                expr: `sum by (instance) (rate(harbormaster_log_records_exported_total{${sel}}[$__rate_interval]))`,
                legendFormat: 'exported {{instance}}',
              },
            ],
          },
          {
            title: 'Drops by reason',
            type: 'timeseries',
            unit: 'ops',
            w: 12,
            targets: [
              {
                expr: `sum by (reason) (rate(harbormaster_log_drops_total{${sel}}[$__rate_interval]))`,
                legendFormat: '{{reason}}',
              },
            ],
          },
          {
            title: 'Export failures and retries',
            type: 'timeseries',
            unit: 'ops',
            w: 12,
            targets: [
              {
                expr: `sum by (kind) (rate(harbormaster_log_export_failures_total{${sel}}[$__rate_interval]))`,
                legendFormat: 'logs failed {{kind}}',
              },
              {
                expr: `sum (rate(harbormaster_log_export_retries_total{${sel}}[$__rate_interval]))`,
                legendFormat: 'logs retries',
              },
              {
                expr: `sum by (reason) (rate(harbormaster_otlp_export_failures_total{${sel}}[$__rate_interval]))`,
                legendFormat: 'traces failed {{reason}}',
              },
            ],
          },
          {
            title: 'Bytes behind (unread log data)',
            type: 'timeseries',
            unit: 'bytes',
            w: 12,
            targets: [
              {
                expr: `sum by (instance) (harbormaster_log_file_bytes_behind{${sel}})`,
                legendFormat: '{{instance}}',
              },
            ],
          },
          {
            title: 'Log export request and checkpoint write time (p90)',
            type: 'timeseries',
            unit: 's',
            w: 24,
            description:
              'One batch is in flight at a time and its checkpoint is written before the next is sent: these two waits per batch bound the lines per second the agent can ship. A slow receiver shows in the request time, a slow state disk in the checkpoint write time.',
            targets: [
              {
                expr: `histogram_quantile(0.9, sum by (le, instance) (rate(harbormaster_log_export_duration_seconds_bucket{${sel}}[$__rate_interval])))`,
                legendFormat: 'export request {{instance}}',
              },
              {
                expr: `histogram_quantile(0.9, sum by (le, instance) (rate(harbormaster_log_checkpoint_write_seconds_bucket{${sel}}[$__rate_interval])))`,
                legendFormat: 'checkpoint write {{instance}}',
              },
            ],
          },
        ],
      },
    ],
  },
  // Security posture and the exec audit trail (issue 18).
  {
    file: 'security.json',
    uid: UIDS.security,
    links: [
      { title: 'Docker host overview', uid: UIDS.overview },
      { title: 'Container detail', uid: UIDS.container },
    ],
    title: 'Security (Harbormaster)',
    description:
      'Container security findings by severity and check (CIS Docker Benchmark), risky settings, allow-list exemptions, engine posture and docker exec activity.',
    tags: ['harbormaster', 'docker', 'security'],
    variables: [JOB_VAR, INSTANCE_VAR],
    rows: [
      {
        title: 'Findings',
        panels: [
          {
            title: 'Critical findings',
            type: 'stat',
            w: 6,
            description: 'Privileged containers and Docker socket mounts outside the allow lists.',
            targets: [
              {
                expr: `sum(container_security_findings{${sel}, severity="critical"}) or vector(0)`,
              },
            ],
          },
          {
            title: 'High findings',
            type: 'stat',
            w: 6,
            targets: [
              { expr: `sum(container_security_findings{${sel}, severity="high"}) or vector(0)` },
            ],
          },
          {
            title: 'Exempted by allow lists',
            type: 'stat',
            w: 6,
            description: 'Failed checks that security.allow or an allowed label exempts.',
            targets: [{ expr: `sum(container_security_findings_allowed{${sel}}) or vector(0)` }],
          },
          {
            title: 'Containers with findings',
            type: 'stat',
            w: 6,
            targets: [
              {
                expr: `count(count by (instance, id) (container_security_findings{${sel}})) or vector(0)`,
              },
            ],
          },
          {
            title: 'Findings by check',
            type: 'bargauge',
            w: 12,
            targets: [
              {
                expr: `sort_desc(sum by (check, severity) (container_security_findings{${sel}}))`,
                legendFormat: '{{check}} ({{severity}})',
                instant: true,
              },
            ],
          },
          {
            title: 'Containers and their findings',
            type: 'table',
            w: 12,
            description: 'One row per failed check of a running container, with its CIS id.',
            targets: [
              {
                expr: `sum by (instance, name, image, check, severity, cis) (container_security_findings{${sel}})`,
              },
            ],
          },
        ],
      },
      {
        title: 'Risky settings',
        panels: [
          {
            title: 'Running containers by risky setting',
            type: 'timeseries',
            w: 12,
            targets: [
              {
                expr: `sum(container_security_privileged{${sel}})`,
                legendFormat: 'privileged',
              },
              {
                expr: `sum(container_security_docker_socket_mounted{${sel}})`,
                legendFormat: 'Docker socket',
              },
              {
                expr: `sum(container_security_run_as_root{${sel}})`,
                legendFormat: 'root',
              },
              {
                expr: `count(count by (instance, id) (container_security_host_namespace{${sel}})) or vector(0)`,
                legendFormat: 'host namespace',
              },
              {
                expr: `sum(container_security_memory_unlimited{${sel}})`,
                legendFormat: 'no memory limit',
              },
            ],
          },
          {
            title: 'Added capabilities, sensitive mounts and host namespaces',
            type: 'table',
            w: 12,
            targets: [
              {
                expr: `count by (capability) (container_security_capability_added{${sel}}) or count by (path) (container_security_sensitive_mount{${sel}}) or count by (namespace) (container_security_host_namespace{${sel}}) or vector(0)`,
              },
            ],
          },
        ],
      },
      {
        title: 'Engine',
        panels: [
          {
            title: 'Engine posture',
            type: 'table',
            w: 16,
            description:
              'userns_remap, seccomp_default_profile, live_restore: 1 is good; tcp_without_tls: 1 is a CIS failure (docker_engine_security_icc, served where the default bridge exists, is left out: it has no series on a host without one).',
            targets: [
              {
                expr: [
                  'userns_remap',
                  'rootless',
                  'seccomp_default_profile',
                  'live_restore',
                  'tcp_without_tls',
                ]
                  .map((f) => `docker_engine_security_${f}{${sel}}`)
                  .join(' or '),
              },
            ],
          },
          {
            title: 'Engine age',
            type: 'stat',
            unit: 's',
            w: 8,
            description: 'Time since the running engine was built (from /version).',
            targets: [
              {
                expr: `time() - docker_engine_security_build_timestamp_seconds{${sel}}`,
                legendFormat: '{{instance}}',
              },
            ],
          },
        ],
      },
      {
        title: 'docker exec',
        panels: [
          {
            title: 'Execs started per container',
            type: 'timeseries',
            w: 12,
            description:
              'docker exec into containers (health probes excluded). The audit records in the log store say who ran what.',
            targets: [
              {
                expr: `sum by (instance, name) (increase(container_exec_total{${sel}, action="exec_start"}[$__rate_interval]))`,
                legendFormat: '{{name}}',
              },
            ],
          },
          {
            title: 'Exec audit records',
            type: 'timeseries',
            w: 12,
            targets: [
              {
                expr: `sum by (outcome) (increase(harbormaster_exec_audit_records_total{${sel}}[$__rate_interval]))`,
                legendFormat: '{{outcome}}',
              },
            ],
          },
        ],
      },
    ],
  },
];

/** Series → the container dashboard for its container and host, time range and job kept. */
/** A field data link (the schema leaves `links` of a field config untyped). */
interface DataLink {
  title: string;
  url: string;
}

function containerDataLink(): DataLink {
  return {
    title: 'Container detail for ${__field.labels.name}',
    url:
      `/d/${UIDS.container}?\${__url_time_range}&\${job:queryparam}` +
      '&var-instance=${__field.labels.instance}&var-container=${__field.labels.name}',
  };
}

export function renderDashboard(spec: DashboardSpec): Dashboard {
  let id = 1;
  let y = 0;
  const panels: Array<Panel | RowPanel> = [];
  for (const row of spec.rows) {
    panels.push({
      type: 'row',
      title: row.title,
      id: id++,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y: y++ },
      panels: [],
    });
    let x = 0;
    let rowH = 0;
    for (const p of row.panels) {
      const w = p.w ?? 12;
      const h = p.h ?? 8;
      if (x + w > 24) {
        x = 0;
        y += rowH;
        rowH = 0;
      }
      const refIds = 'ABCDEFGH';
      panels.push({
        type: p.type,
        title: p.title,
        ...(p.description ? { description: p.description } : {}),
        id: id++,
        datasource: DS,
        gridPos: { h, w, x, y },
        fieldConfig: {
          defaults: {
            unit: p.unit ?? 'short',
            ...(p.max !== undefined ? { max: p.max, min: 0 } : {}),
            ...(p.containerLink ? { links: [containerDataLink()] } : {}),
          },
          overrides: [],
        },
        options:
          p.type === 'timeseries'
            ? {
                legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
                tooltip: { mode: 'multi', sort: 'desc' },
              }
            : {},
        targets: p.targets.map((t, i) => ({
          datasource: DS,
          refId: refIds[i],
          expr: t.expr,
          ...(t.legendFormat ? { legendFormat: t.legendFormat } : {}),
          ...(t.instant || p.type === 'table'
            ? { instant: true, range: false, format: p.type === 'table' ? 'table' : 'time_series' }
            : { range: true }),
        })),
      });
      x += w;
      rowH = Math.max(rowH, h);
    }
    y += rowH;
  }
  return {
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    uid: spec.uid,
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    annotations: { list: [] },
    links: spec.links.map((l) => ({
      title: l.title,
      type: 'link',
      url: `/d/${l.uid}`,
      icon: 'dashboard',
      keepTime: true,
      includeVars: true,
      asDropdown: false,
      targetBlank: false,
      tags: [],
      tooltip: '',
    })),
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          hide: 0,
          refresh: 1,
          regex: '',
          options: [],
        },
        ...spec.variables.map((v): VariableModel => ({
          name: v.name,
          label: v.label,
          type: 'query',
          datasource: DS,
          query: { query: v.query, refId: 'vars' },
          refresh: 2,
          sort: 1,
          multi: v.multi ?? false,
          includeAll: v.includeAll ?? false,
          ...(v.includeAll ? { allValue: '.*' } : {}),
          hide: 0,
          options: [],
        })),
      ],
    },
    panels,
    version: 1,
  };
}

/** Every PromQL expression of every dashboard, with its panel (for validation tests). */
export function allExpressions(): Array<{ dashboard: string; panel: string; expr: string }> {
  return DASHBOARDS.flatMap((d) =>
    d.rows.flatMap((r) =>
      r.panels.flatMap((p) =>
        p.targets.map((t) => ({ dashboard: d.file, panel: p.title, expr: t.expr })),
      ),
    ),
  );
}

/** Replaces Grafana's variables with values Prometheus accepts, for parsing and querying. */
export function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replace(/\$(job|instance|project|container)\b/g, '.*');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const { writeFileSync } = await import('node:fs');
  for (const d of DASHBOARDS) {
    const path = new URL(`../dashboards/${d.file}`, import.meta.url);
    writeFileSync(path, JSON.stringify(renderDashboard(d), null, 2) + '\n');
    process.stdout.write(`wrote dashboards/${d.file}\n`);
  }
}
