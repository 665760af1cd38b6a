/**
 * Container security posture: what `docker inspect` says about a container, judged against the
 * runtime section of the CIS Docker Benchmark (v1.2.0 numbering). Pure functions, no I/O: the
 * collector (security.ts) calls assessPosture() once per inventory change, never per scrape.
 */
import type { ContainerInfo, ContainerSecurity } from '../docker/types.js';

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * Every check, named after what it checks; a container that fails one has a finding with that
 * `check` label. `cis` is the CIS Docker Benchmark v1.2.0 recommendation it maps to.
 */
export const SECURITY_CHECKS = {
  privileged: { severity: 'critical', cis: '5.4', what: 'runs with --privileged' },
  docker_socket: { severity: 'critical', cis: '5.31', what: 'has the Docker socket mounted' },
  host_namespace: {
    severity: 'high',
    cis: '5.9,5.15,5.16,5.20,5.30',
    what: 'shares a namespace (pid, ipc, uts, network, user) with the host',
  },
  capabilities: {
    severity: 'high',
    cis: '5.3',
    what: "has capabilities added beyond Docker's default set",
  },
  seccomp: { severity: 'high', cis: '5.21', what: 'runs with seccomp=unconfined' },
  apparmor: { severity: 'high', cis: '5.1', what: 'runs with apparmor=unconfined' },
  sensitive_mount: {
    severity: 'high',
    cis: '5.5',
    what: 'has a sensitive host directory bind-mounted (/, /etc, /proc, /sys, /var/lib/docker, /boot, /dev)',
  },
  run_as_root: {
    severity: 'medium',
    cis: '4.1',
    what: 'runs as root (user unset, 0 or root) without user-namespace remapping',
  },
  no_new_privileges: {
    severity: 'low',
    cis: '5.25',
    what: 'may gain new privileges (no --security-opt no-new-privileges)',
  },
  read_only_rootfs: { severity: 'low', cis: '5.12', what: 'has a writable root filesystem' },
  memory_limit: { severity: 'low', cis: '5.10', what: 'has no memory limit' },
  pids_limit: { severity: 'low', cis: '5.28', what: 'has no PIDs limit' },
} as const satisfies Record<string, { severity: Severity; cis: string; what: string }>;

export type SecurityCheck = keyof typeof SECURITY_CHECKS;
export const CHECK_NAMES = Object.keys(SECURITY_CHECKS) as SecurityCheck[];

export function isCheck(s: string): s is SecurityCheck {
  return Object.prototype.hasOwnProperty.call(SECURITY_CHECKS, s);
}

/** Host paths whose bind mount is reported by container_security_sensitive_mount{path}. */
export const SENSITIVE_PATHS = [
  '/',
  '/etc',
  '/proc',
  '/sys',
  '/var/run/docker.sock',
  '/var/lib/docker',
  '/boot',
  '/dev',
] as const;

export const HOST_NAMESPACES = ['pid', 'ipc', 'uts', 'network', 'user'] as const;
export type HostNamespace = (typeof HOST_NAMESPACES)[number];

/** Capabilities Docker grants by default: adding one of them changes nothing. */
const DEFAULT_CAPS = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
]);

/** Every Linux capability (capability(7)), plus ALL; anything else is reported as `other`. */
const KNOWN_CAPS = new Set([
  'ALL',
  ...DEFAULT_CAPS,
  'AUDIT_CONTROL',
  'AUDIT_READ',
  'BLOCK_SUSPEND',
  'BPF',
  'CHECKPOINT_RESTORE',
  'DAC_READ_SEARCH',
  'IPC_LOCK',
  'IPC_OWNER',
  'LEASE',
  'LINUX_IMMUTABLE',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'NET_ADMIN',
  'NET_BROADCAST',
  'PERFMON',
  'SYSLOG',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_MODULE',
  'SYS_NICE',
  'SYS_PACCT',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'WAKE_ALARM',
]);

/** What the engine does that changes a container's posture (from /info SecurityOptions). */
export interface EngineSecurity {
  /** The daemon runs with --userns-remap: root in a container is not root on the host. */
  usernsRemap: boolean;
  /** Rootless daemon: root in a container is the (unprivileged) user running the daemon. */
  rootless: boolean;
}

export interface PostureOptions {
  engine: EngineSecurity;
  /** Host paths of the Docker socket besides the standard ones (e.g. the daemon the agent uses). */
  socketPaths?: readonly string[];
}

/** The facts (for the per-topic gauges) and the failed checks (for the findings). */
export interface Posture {
  privileged: boolean;
  runAsRoot: boolean;
  dockerSocketMounted: boolean;
  /** Entries of SENSITIVE_PATHS that are bind-mounted (the socket included). */
  sensitiveMounts: string[];
  /** Added capabilities outside Docker's default set (known names, `ALL` or `other`). */
  capabilitiesAdded: string[];
  seccompUnconfined: boolean;
  apparmorUnconfined: boolean;
  noNewPrivileges: boolean;
  readOnlyRootfs: boolean;
  hostNamespaces: HostNamespace[];
  memoryUnlimited: boolean;
  pidsUnlimited: boolean;
  /** Checks this container fails, in SECURITY_CHECKS order (before any allow list). */
  failed: SecurityCheck[];
}

const STANDARD_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock'];

/** `opt=value` or the older `opt:value` form of a --security-opt entry. */
function securityOpt(opts: readonly string[], name: string): string | undefined {
  for (const o of opts) {
    const s = o.trim();
    if (s === name) return '';
    if (s.startsWith(name + '=') || s.startsWith(name + ':')) return s.slice(name.length + 1);
  }
  return undefined;
}

/**
 * A --security-opt boolean as the daemon reads it (Go's strconv.ParseBool; a bare
 * `no-new-privileges` is true); undefined for anything else, which the daemon refuses.
 */
function parseGoBool(v: string): boolean | undefined {
  if (v === '' || ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function isRootUser(user: string): boolean {
  const u = user.split(':')[0]?.trim() ?? '';
  return u === '' || u === 'root' || u === '0';
}

/** True when `path` is `dir` or below it (`/` only matches itself: everything is below it). */
function under(path: string, dir: string): boolean {
  if (dir === '/') return path === '/';
  return path === dir || path.startsWith(dir + '/');
}

function trimSlashes(p: string): string {
  const s = p.replace(/\/+$/, '');
  return s === '' ? '/' : s;
}

/** Judges one container. Privileged implies every capability and no seccomp/AppArmor: those
 * checks report only what is set explicitly, so a privileged container has one finding, not five. */
export function assessPosture(
  sec: ContainerSecurity,
  info: ContainerInfo,
  o: PostureOptions,
): Posture {
  const sockets = new Set([...STANDARD_SOCKETS, ...(o.socketPaths ?? [])].map(trimSlashes));
  let dockerSocketMounted = false;
  const sensitive = new Set<string>();
  for (const b of sec.binds) {
    const src = trimSlashes(b.source);
    const dst = trimSlashes(b.destination);
    // the socket itself, a directory holding it (/var/run, /run; `/` counts as a sensitive
    // mount instead), or anything mounted where clients look for the socket
    let sock = sockets.has(src) || STANDARD_SOCKETS.includes(dst);
    if (!sock && src !== '/') for (const s of sockets) if (s.startsWith(src + '/')) sock = true;
    if (sock) {
      dockerSocketMounted = true;
      sensitive.add('/var/run/docker.sock');
    }
    for (const p of SENSITIVE_PATHS) {
      if (p === '/var/run/docker.sock') continue;
      // the path itself or below it; or a directory holding it (`-v /var/lib:/x` exposes
      // /var/lib/docker), except `/`, which is its own entry
      if (under(src, p) || (src !== '/' && p.startsWith(src + '/'))) sensitive.add(p);
    }
  }
  const sensitiveMounts = SENSITIVE_PATHS.filter((p) => sensitive.has(p));

  // As the daemon applies them (moby oci/caps TweakCapabilities): --cap-drop removes from the
  // default set only; every --cap-add is granted even when it is dropped too, and --cap-add ALL
  // grants everything whatever is dropped next to it. So a drop never cancels an add here.
  const caps = new Set<string>();
  for (const c of sec.capAdd) {
    if (DEFAULT_CAPS.has(c)) continue;
    caps.add(KNOWN_CAPS.has(c) ? c : 'other');
  }
  const capabilitiesAdded = [...caps].sort();

  const seccomp = securityOpt(sec.securityOpt, 'seccomp');
  const apparmor = securityOpt(sec.securityOpt, 'apparmor');
  const nnp = securityOpt(sec.securityOpt, 'no-new-privileges');
  const seccompUnconfined = seccomp === 'unconfined';
  const apparmorUnconfined = apparmor === 'unconfined';
  const noNewPrivileges = nnp !== undefined && parseGoBool(nnp) === true;

  const remapped = (o.engine.usernsRemap && sec.usernsMode !== 'host') || o.engine.rootless;
  const runAsRoot = isRootUser(sec.user) && !remapped;

  const hostNamespaces: HostNamespace[] = [];
  if (sec.pidMode === 'host') hostNamespaces.push('pid');
  if (sec.ipcMode === 'host') hostNamespaces.push('ipc');
  if (sec.utsMode === 'host') hostNamespaces.push('uts');
  if (info.networkMode === 'host') hostNamespaces.push('network');
  // opting out of the daemon's remapping shares the host's user namespace
  if (o.engine.usernsRemap && sec.usernsMode === 'host') hostNamespaces.push('user');

  const memoryUnlimited = !(info.spec.memoryLimit > 0);
  const pidsUnlimited = !(info.spec.pidsLimit > 0);

  const p: Posture = {
    privileged: sec.privileged,
    runAsRoot,
    dockerSocketMounted,
    sensitiveMounts,
    capabilitiesAdded,
    seccompUnconfined,
    apparmorUnconfined,
    noNewPrivileges,
    readOnlyRootfs: sec.readOnlyRootfs,
    hostNamespaces,
    memoryUnlimited,
    pidsUnlimited,
    failed: [],
  };
  const fails: Record<SecurityCheck, boolean> = {
    privileged: p.privileged,
    docker_socket: p.dockerSocketMounted,
    host_namespace: hostNamespaces.length > 0,
    capabilities: capabilitiesAdded.length > 0,
    seccomp: seccompUnconfined,
    apparmor: apparmorUnconfined,
    // the socket has its own check
    sensitive_mount: sensitiveMounts.some((m) => m !== '/var/run/docker.sock'),
    run_as_root: runAsRoot,
    no_new_privileges: !noNewPrivileges,
    read_only_rootfs: !p.readOnlyRootfs,
    memory_limit: memoryUnlimited,
    pids_limit: pidsUnlimited,
  };
  p.failed = CHECK_NAMES.filter((c) => fails[c]);
  return p;
}

/** Engine facts from /info `SecurityOptions` (`name=userns`, `name=rootless`, `name=seccomp,profile=…`). */
export function parseSecurityOptions(opts: readonly string[] | null | undefined): {
  names: Set<string>;
  seccompProfile: string | undefined;
} {
  const names = new Set<string>();
  let seccompProfile: string | undefined;
  for (const o of opts ?? []) {
    const kv = new Map<string, string>();
    for (const part of String(o).split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) kv.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const name = kv.get('name');
    if (!name) continue;
    names.add(name);
    if (name === 'seccomp') seccompProfile = kv.get('profile') ?? 'default';
  }
  return { names, seccompProfile };
}

// ---- allow lists ----

/**
 * A shell-style glob (`*` any run, `?` one character, everything else literal) matched in
 * O(pattern × text) without backtracking blow-up (the classic two-pointer wildcard match).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === text[t])) {
      p++;
      t++;
    } else if (pc === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export interface AllowRule {
  /** A check name, or `*` for every check. */
  check: SecurityCheck | '*';
  field: 'name' | 'image';
  glob: string;
}

/** Parses `check@name=glob` / `check@image=glob`; throws with a message naming the entry. */
export function parseAllowRule(entry: string): AllowRule {
  const m = /^([a-z_*]+)@(name|image)=(.+)$/.exec(entry.trim());
  if (!m)
    throw new Error(
      `invalid security allow entry ${JSON.stringify(entry)}: expected <check>@name=<glob> or <check>@image=<glob>`,
    );
  const check = m[1]!;
  if (check !== '*' && !isCheck(check))
    throw new Error(
      `invalid security allow entry ${JSON.stringify(entry)}: unknown check ${JSON.stringify(check)} (expected one of ${CHECK_NAMES.join(', ')} or *)`,
    );
  return { check: check, field: m[2] as 'name' | 'image', glob: m[3]! };
}

export const ALLOW_LABEL = 'harbormaster.security.allow';

export interface AllowPolicy {
  rules: readonly AllowRule[];
  /** Checks a container may exempt itself from with the allow label (labels only tighten: default none). */
  labelChecks: ReadonlySet<SecurityCheck>;
}

/** Checks exempted for this container: config rules by name/image, plus the label within labelChecks. */
export function allowedChecks(
  info: ContainerInfo,
  policy: AllowPolicy,
  onBadLabel?: (token: string) => void,
): Set<SecurityCheck> {
  const out = new Set<SecurityCheck>();
  for (const r of policy.rules) {
    const v = r.field === 'name' ? info.name : info.image;
    if (!globMatch(r.glob, v)) continue;
    if (r.check === '*') for (const c of CHECK_NAMES) out.add(c);
    else out.add(r.check);
  }
  const label = info.labels[ALLOW_LABEL];
  if (label !== undefined) {
    for (const raw of label.split(',')) {
      const tok = raw.trim();
      if (tok === '') continue;
      if (!isCheck(tok)) onBadLabel?.(tok);
      else if (policy.labelChecks.has(tok)) out.add(tok);
    }
  }
  return out;
}
