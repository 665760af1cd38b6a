/**
 * The log-shipping part of the status page, read from the metrics the log pipeline registers
 * today (harbormaster_log_*). What the metrics do not have is reported as unknown: records
 * shipped per container and the last export error per container (see README, status API).
 */
import type { Registry } from 'prom-client';
import type { LogShippingContainer, LogShippingSnapshot, LogShippingSource } from './model.js';

type Values = Array<{ labels: Record<string, string | number | undefined>; value: number }>;

async function values(registry: Registry, name: string): Promise<Values | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const got = await m.get();
  return got.values;
}

function byLabel(v: Values | undefined, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of v ?? []) {
    const k = s.labels[label];
    if (k === undefined) continue;
    out[String(k)] = (out[String(k)] ?? 0) + s.value;
  }
  return out;
}

const sum = (v: Values | undefined): number => (v ?? []).reduce((a, s) => a + s.value, 0);

export class RegistryLogSource implements LogShippingSource {
  private last: LogShippingSnapshot | undefined;
  private at = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    /** A snapshot younger than this is reused (the page refreshes every few seconds). */
    private readonly maxAgeMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  snapshot(): LogShippingSnapshot | undefined {
    return this.last;
  }

  refresh(): Promise<void> {
    if (this.last && this.now() - this.at < this.maxAgeMs) return Promise.resolve();
    this.inflight ??= this.read()
      .catch(() => {
        /* keep the previous snapshot: status is best effort, /metrics says the rest */
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async read(): Promise<void> {
    const r = this.registry;
    const [read, behind, qRecords, qBytes, exported, failures, drops] = await Promise.all([
      values(r, 'harbormaster_log_lines_read_total'),
      values(r, 'harbormaster_log_file_bytes_behind'),
      values(r, 'harbormaster_log_queue_records'),
      values(r, 'harbormaster_log_queue_bytes'),
      values(r, 'harbormaster_log_records_exported_total'),
      values(r, 'harbormaster_log_export_failures_total'),
      values(r, 'harbormaster_log_drops_total'),
    ]);
    const containers = new Map<string, LogShippingContainer>();
    const entry = (name: string): LogShippingContainer => {
      let e = containers.get(name);
      if (!e) {
        e = { linesRead: 0, linesShipped: null, bytesBehind: 0, lastError: null };
        containers.set(name, e);
      }
      return e;
    };
    for (const [name, n] of Object.entries(byLabel(read, 'container_name')))
      entry(name).linesRead = n;
    for (const [name, n] of Object.entries(byLabel(behind, 'container_name')))
      entry(name).bytesBehind = n;
    this.last = {
      containers,
      queue: { records: sum(qRecords), bytes: sum(qBytes) },
      exported: sum(exported),
      exportFailures: byLabel(failures, 'kind'),
      drops: byLabel(drops, 'reason'),
    };
    this.at = this.now();
  }
}
