// Status page sources over a fixed list of containers (unit tests and the status benchmark): the
// real usage ring, lifecycle views and a fixed log snapshot; nothing talks to a daemon.
import type { ContainerInfo } from '../../src/docker/types.js';
import type {
  LifecycleView,
  LogShippingSnapshot,
  SecurityFinding,
  StatusSources,
} from '../../src/server/status/model.js';
import { UsageRing } from '../../src/server/status/ring.js';

export interface StaticStatus {
  sources: StatusSources;
  ring: UsageRing;
  lifecycle: Map<string, LifecycleView>;
}

export function staticStatusSources(
  containers: readonly ContainerInfo[],
  opts: {
    now?: () => number;
    logs?: LogShippingSnapshot;
    allowlist?: string[];
    findings?: Map<string, SecurityFinding[]>;
  } = {},
): StaticStatus {
  const ring = new UsageRing(60);
  const lifecycle = new Map<string, LifecycleView>();
  const byId = new Map(containers.map((c) => [c.id, c]));
  const logs = opts.logs;
  const sources: StatusSources = {
    version: '9.9.9',
    hostName: 'host-1',
    startedAt: 1_700_000_000_000,
    now: opts.now,
    containers: () => containers,
    container: (id) => byId.get(id),
    daemon: () => ({
      url: 'unix:///var/run/docker.sock',
      connected: true,
      apiVersion: '1.47',
      serverVersion: '27.5.1',
      detail: null,
    }),
    components: () => ({ inventory: { ok: true, detail: 'synced' }, metrics: { ok: true } }),
    lifecycle: (id) => lifecycle.get(id),
    usage: ring,
    usageIntervalSeconds: 15,
    logs: logs ? { snapshot: () => logs } : undefined,
    findings: opts.findings ? (id) => opts.findings?.get(id) : undefined,
    otlp: () => [
      {
        signal: 'logs',
        url: 'http://127.0.0.1:4318/v1/logs',
        protocol: 'http/protobuf',
        ok: false,
        lastSuccessAt: null,
        lastError: 'export retrying (3): HTTP 503',
      },
    ],
    labelAllowlist: opts.allowlist ?? ['com.docker.compose.project'],
  };
  return { sources, ring, lifecycle };
}
