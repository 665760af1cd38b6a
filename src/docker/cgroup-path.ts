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
