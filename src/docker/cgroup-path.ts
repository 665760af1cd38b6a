/**
 * Where Docker puts a container's cgroup, as a path relative to the cgroup mount
 * (the same shape for v1 controllers and the v2 unified hierarchy).
 *
 * - cgroupfs driver: `<parent or /docker>/<id>`
 * - systemd driver: `<expanded parent slice or /system.slice>/docker-<id>.scope`
 *   where a slice `a-b.slice` expands to `/a.slice/a-b.slice` as systemd does.
 */
export function containerCgroupPath(id: string, driver: string, cgroupParent = ''): string {
  if (driver === 'systemd') {
    const parent = cgroupParent || 'system.slice';
    return `${expandSlice(parent)}/docker-${id}.scope`;
  }
  let parent = cgroupParent || '/docker';
  if (!parent.startsWith('/')) parent = '/' + parent;
  return `${parent.replace(/\/+$/, '')}/${id}`;
}

/** systemd's slice expansion: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`. */
export function expandSlice(slice: string): string {
  if (slice.startsWith('/')) return slice.replace(/\/+$/, ''); // already a path
  if (!slice.endsWith('.slice')) return '/' + slice;
  const name = slice.slice(0, -'.slice'.length);
  if (name === '-' || name === '') return '';
  const parts = name.split('-');
  let acc = '';
  let path = '';
  for (const part of parts) {
    acc = acc ? `${acc}-${part}` : part;
    path += `/${acc}.slice`;
  }
  return path;
}

/**
 * The parent cgroup of a running container as the kernel reports it in `/proc/<pid>/cgroup`,
 * for containers whose inspect says nothing: a daemon started with `--cgroup-parent` (or
 * `cgroup-parent` in daemon.json) puts every container without a `--cgroup-parent` of its own
 * there, and `HostConfig.CgroupParent` stays empty. Returns the parent as an absolute path (the
 * `cgroupParent` argument of containerCgroupPath), or undefined when no line of `text` names
 * the container's own cgroup: `<parent>/<id>` (cgroupfs) or `<parent>/docker-<id>.scope`
 * (systemd). Paths relative to another cgroup namespace (`/../..`, or `/` inside a private
 * cgroupns) name nothing the agent can find and are ignored.
 */
export function cgroupParentFromProc(text: string, id: string): string | undefined {
  const leaves = [`/${id}`, `/docker-${id}.scope`];
  for (const line of text.split('\n')) {
    // `hierarchy-id:controllers:path`; the path may itself contain ':'
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const path = line.slice(second + 1).trim();
    if (!path.startsWith('/') || path.split('/').includes('..')) continue;
    const leaf = leaves.find((l) => path.endsWith(l));
    if (leaf === undefined) continue;
    return path.slice(0, path.length - leaf.length) || '/';
  }
  return undefined;
}
