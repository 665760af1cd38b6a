/**
 * cAdvisor's remaining `machine_*` families, read from proc_root (not from the agent's own
 * container view, so they describe the host): CPU topology from /proc/cpuinfo, swap from
 * /proc/meminfo. The topology does not change while the host runs; it is read once, swap on
 * every scrape (one small file). `machine_scrape_error` is 1 when a file could not be read or
 * understood (the affected families are then left out), as cAdvisor reports it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { header } from './exposition.js';
import { parseMeminfo } from './root.js';

export interface CpuTopology {
  physicalCores: number;
  sockets: number;
}

/**
 * Counts sockets (distinct `physical id`) and physical cores (distinct `physical id`/`core id`
 * pairs). Without those fields (some ARM kernels) every processor is its own core on one socket.
 */
export function parseCpuinfo(text: string): CpuTopology | undefined {
  const sockets = new Set<string>();
  const cores = new Set<string>();
  let processors = 0;
  let socket = '';
  let core = '';
  const flush = (): void => {
    if (socket !== '') sockets.add(socket);
    if (core !== '') cores.add(`${socket}/${core}`);
    socket = '';
    core = '';
  };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const k = line.slice(0, colon).trim();
    const v = line.slice(colon + 1).trim();
    if (k === 'processor') {
      flush();
      processors++;
    } else if (k === 'physical id') socket = v;
    else if (k === 'core id') core = v;
  }
  flush();
  if (processors === 0) return undefined;
  return {
    physicalCores: cores.size > 0 ? cores.size : processors,
    sockets: sockets.size > 0 ? sockets.size : 1,
  };
}

export const MACHINE_FAMILIES = [
  'machine_cpu_physical_cores',
  'machine_cpu_sockets',
  'machine_swap_bytes',
  'machine_scrape_error',
] as const;

export class MachineMetrics {
  private topology: CpuTopology | undefined;
  private topologyRead = false;
  private readonly on: (name: string) => boolean;

  constructor(
    private readonly procRoot: string,
    disabled: readonly string[] = [],
  ) {
    const off = new Set(disabled);
    this.on = (name) => !off.has('host') && !off.has(name);
  }

  render(): string {
    let error = 0;
    if (!this.topologyRead) {
      this.topologyRead = true;
      try {
        this.topology = parseCpuinfo(readFileSync(join(this.procRoot, 'cpuinfo'), 'latin1'));
      } catch {
        this.topology = undefined;
      }
    }
    if (!this.topology) error = 1;
    let swap: number | undefined;
    try {
      swap = parseMeminfo(readFileSync(join(this.procRoot, 'meminfo'), 'latin1')).get('SwapTotal');
    } catch {
      swap = undefined;
    }
    if (swap === undefined) error = 1;
    let out = '';
    const family = (name: string, help: string, v: number | undefined): void => {
      if (v === undefined || !this.on(name)) return;
      out += header(name, 'gauge', help) + `${name} ${v}\n`;
    };
    family(
      'machine_cpu_physical_cores',
      'Number of physical CPU cores.',
      this.topology?.physicalCores,
    );
    family('machine_cpu_sockets', 'Number of CPU sockets.', this.topology?.sockets);
    family('machine_swap_bytes', 'Amount of swap memory available on the machine.', swap);
    family(
      'machine_scrape_error',
      '1 if there was an error while getting machine metrics, 0 otherwise.',
      error,
    );
    return out;
  }
}
