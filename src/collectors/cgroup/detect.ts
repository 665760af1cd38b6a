import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'blkio', 'pids'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

/** Where the cgroup hierarchies of this host are, as seen through cgroup_root. */
export interface CgroupLayout {
  mode: CgroupMode;
  root: string;
  /** Mount directory of each v1 controller (undefined when absent); empty on pure v2. */
  v1: Partial<Record<V1Controller, string>>;
  /** The unified hierarchy: cgroup_root on v2, cgroup_root/unified on hybrid hosts. */
  unified: string | undefined;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Detects v1, v2 or hybrid from the files under cgroup_root:
 * - v2: `cgroup.controllers` at the root (the unified hierarchy is mounted there);
 * - hybrid: v1 controller mounts plus `unified/cgroup.controllers` (systemd's hybrid layout);
 * - v1: controller mounts only. Co-mounted controllers (`cpu,cpuacct`) are found by name.
 */
export function detectCgroupLayout(root: string): CgroupLayout {
  if (existsSync(join(root, 'cgroup.controllers'))) {
    return { mode: 'v2', root, v1: {}, unified: root };
  }
  const v1: Partial<Record<V1Controller, string>> = {};
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    entries = [];
  }
  for (const c of V1_CONTROLLERS) {
    if (isDir(join(root, c))) {
      v1[c] = join(root, c);
      continue;
    }
    const co = entries.find((e) => e.split(',').includes(c) && isDir(join(root, e)));
    if (co) v1[c] = join(root, co);
  }
  const unifiedDir = join(root, 'unified');
  const unified = existsSync(join(unifiedDir, 'cgroup.controllers')) ? unifiedDir : undefined;
  return { mode: unified ? 'hybrid' : 'v1', root, v1, unified };
}
