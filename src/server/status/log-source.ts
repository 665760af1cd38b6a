/**
 * The log-shipping part of the status page, read from the log pipeline itself
 * (LogTelemetry.snapshot(): the counters the sources and the export loop keep per container), so
 * it costs one pass over the open log sources and no metric collection.
 */
import type { LogShippingSnapshot as TelemetrySnapshot } from '../../logs/telemetry.js';
import type { LogShippingContainer, LogShippingSnapshot, LogShippingSource } from './model.js';

/** The status view of a telemetry snapshot (containers keyed by id; zero counts left out). */
export function fromTelemetry(t: TelemetrySnapshot): LogShippingSnapshot {
  const containers = new Map<string, LogShippingContainer>();
  for (const c of t.containers)
    containers.set(c.key, {
      linesRead: c.linesRead,
      linesShipped: c.linesShipped,
      bytesBehind: c.bytesBehind,
      lastError: c.lastExportError ?? c.lastError ?? null,
    });
  const counts = (r: Record<string, number | undefined>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, n] of Object.entries(r)) if (n) out[k] = n;
    return out;
  };
  return {
    containers,
    queue: { records: t.queue.records, bytes: t.queue.bytes },
    exported: t.exported,
    lastSuccessAt: t.lastExportAt ?? null,
    lastError: t.lastExportError ?? null,
    exportFailures: counts(t.exportFailures),
    drops: counts(t.drops),
  };
}

/** A LogShippingSource over the log pipeline's telemetry. */
export function telemetryLogSource(t: { snapshot(): TelemetrySnapshot }): LogShippingSource {
  return { snapshot: () => fromTelemetry(t.snapshot()) };
}
