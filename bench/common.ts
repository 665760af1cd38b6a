// Shared helpers for the benchmarks: process CPU/RSS from /proc, tables, results.
import { readFileSync } from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (0-based after the command name)
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident set size in bytes and its peak (VmHWM), from /proc/<pid>/status. */
export function procMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export const MiB = 1024 * 1024;

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  return n.toFixed(digits);
}

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0] as object);
  const cells = rows.map((r) =>
    cols.map((c) => (typeof r[c] === 'number' ? fmt(r[c]) : String(r[c] ?? ''))),
  );
  const widths = cols.map((c, i) =>
    Math.max(c.length, ...cells.map((row) => (row[i] ?? '').length)),
  );
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(`\n${title}\n${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of cells) process.stdout.write(line(row) + '\n');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
