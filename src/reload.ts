/**
 * SIGHUP reload: the configuration is loaded and validated exactly as at startup; a file that
 * fails leaves the running configuration untouched. Otherwise each live setting is handed to the
 * component that owns it as narrow options (a `reload` hook), and every changed setting nobody can
 * apply live is named in the log and keeps its old value until a restart.
 */
import type { Config } from './config/schema.js';
import { listLeaves } from './config/load.js';

/** One group of settings that can change while the agent runs, and who applies them. */
export interface LiveSettings {
  /** Dotted keys or key prefixes (`logs.processing` covers everything below it). */
  keys: readonly string[];
  /**
   * Applies the new values. Returns settings (with why) that could not be applied after all;
   * throwing counts as not applied.
   */
  apply(next: Config): string[] | void | Promise<string[] | void>;
}

export interface ReloadReport {
  /** Dotted keys whose value differs from the running configuration. */
  changed: string[];
  /** Changed keys applied live. */
  applied: string[];
  /** Changed keys (or notes) that keep their old value until a restart. */
  restartNeeded: string[];
  /** The configuration now in force: `next` with the restart-needed keys at their old values. */
  effective: Config;
}

function get(root: unknown, path: readonly string[]): unknown {
  let cur = root;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function set(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = root;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  cur[path[path.length - 1] as string] = value;
}

/** Every leaf key of the schema whose value differs between two configurations. */
export function changedKeys(prev: Config, next: Config): string[] {
  const out: string[] = [];
  for (const leaf of listLeaves()) {
    if (JSON.stringify(get(prev, leaf.path)) !== JSON.stringify(get(next, leaf.path)))
      out.push(leaf.path.join('.'));
  }
  return out;
}

const covers = (prefix: string, key: string): boolean =>
  key === prefix || key.startsWith(prefix + '.');

/**
 * Applies `next` over `prev`. Groups in `always` run even when none of their keys changed (e.g.
 * the web config file, whose content can change under the same path).
 */
export async function applyReload(
  prev: Config,
  next: Config,
  groups: readonly LiveSettings[],
  always: ReadonlySet<LiveSettings> = new Set(),
): Promise<ReloadReport> {
  const changed = changedKeys(prev, next);
  const applied: string[] = [];
  const restartNeeded: string[] = [];
  const handled = new Set<string>();
  const failed: string[] = [];
  for (const g of groups) {
    const mine = changed.filter((k) => g.keys.some((p) => covers(p, k)));
    for (const k of mine) handled.add(k);
    if (mine.length === 0 && !always.has(g)) continue;
    try {
      const notes = (await g.apply(next)) ?? [];
      restartNeeded.push(...notes);
      applied.push(...mine);
    } catch (err) {
      failed.push(...mine);
      restartNeeded.push(...mine.map((k) => `${k} (${(err as Error).message})`));
    }
  }
  const fixed = changed.filter((k) => !handled.has(k));
  restartNeeded.unshift(...fixed);
  const effective = structuredClone(next) as Config & Record<string, unknown>;
  for (const k of [...fixed, ...failed])
    set(effective, k.split('.'), structuredClone(get(prev, k.split('.'))));
  return { changed, applied, restartNeeded, effective };
}
