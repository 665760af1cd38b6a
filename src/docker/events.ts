/** Bounded label values for daemon events (unknown ones fold into `other`). */
const ACTIONS: Record<string, ReadonlySet<string>> = {
  container: new Set([
    'attach',
    'commit',
    'copy',
    'create',
    'destroy',
    'detach',
    'die',
    'exec_create',
    'exec_detach',
    'exec_die',
    'exec_start',
    'export',
    'health_status',
    'kill',
    'oom',
    'pause',
    'rename',
    'resize',
    'restart',
    'start',
    'stop',
    'top',
    'unpause',
    'update',
    'prune',
    'archive-path',
    'extract-to-dir',
  ]),
  image: new Set(['delete', 'import', 'load', 'pull', 'push', 'save', 'tag', 'untag', 'prune']),
  volume: new Set(['create', 'destroy', 'mount', 'unmount', 'prune']),
  network: new Set(['create', 'connect', 'disconnect', 'destroy', 'remove', 'update', 'prune']),
  daemon: new Set(['reload']),
  plugin: new Set(['enable', 'disable', 'install', 'remove']),
  builder: new Set(['prune']),
  node: new Set(['create', 'update', 'remove']),
  service: new Set(['create', 'update', 'remove']),
  secret: new Set(['create', 'update', 'remove']),
  config: new Set(['create', 'update', 'remove']),
};

/** Action without its detail (`health_status: healthy` → `health_status`). */
export function baseAction(action: string): string {
  const colon = action.indexOf(':');
  return (colon >= 0 ? action.slice(0, colon) : action).trim();
}

export function eventLabels(type: string, action: string): { type: string; action: string } {
  const set = ACTIONS[type];
  if (!set) return { type: 'other', action: 'other' };
  const a = baseAction(action);
  return { type, action: set.has(a) ? a : 'other' };
}

/** Container events that never change what inspect reports. */
export const NON_STATE_ACTIONS: ReadonlySet<string> = new Set([
  'attach',
  'commit',
  'copy',
  'detach',
  'exec_create',
  'exec_detach',
  'exec_die',
  'exec_start',
  'export',
  'resize',
  'top',
  'archive-path',
  'extract-to-dir',
]);
