// `harbormaster doctor`: checks, in the order the agent needs them, everything a deployment must
// get right (daemon, socket, cgroups, /proc, log files, state directory, OTLP receiver, port) and
// prints each finding as ok / warn / fail with a fix.
import { constants, existsSync } from 'node:fs';
import { access, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { ApiContainerInspect, ApiContainerSummary, ApiInfo } from './docker/api-types.js';
import { containerCgroupPath } from './docker/cgroup-path.js';
import { DockerClient, DockerError, MIN_API_VERSION } from './docker/client.js';
import { daemonCgroupParent } from './docker/inventory.js';
import { maskSecretsInString } from './util/secrets.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Stable identifier, e.g. `daemon`, `socket`. */
  id: string;
  /** What was checked, for people. */
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do about a warn / fail. */
  fix?: string;
}

export interface DoctorReport {
  checks: CheckResult[];
  summary: Record<CheckStatus, number>;
  /** The process exit status (see EXIT). */
  exitCode: number;
}

/**
 * Exit status of `harbormaster doctor` (documented in docs/troubleshooting.md):
 * 0 everything ok, 1 warnings but no failure, 2 invalid configuration or usage (nothing was
 * checked, as for every command), 3 at least one failure.
 */
export const EXIT = { ok: 0, warn: 1, usage: 2, fail: 3 } as const;

const ORDER: readonly string[] = [
  'daemon',
  'socket',
  'cgroup',
  'proc',
  'logs',
  'state',
  'otlp',
  'listen',
];

/** What the daemon told us, shared between checks. */
interface DaemonFacts {
  info?: ApiInfo;
  /** A running container (inspected), if any. */
  container?: ApiContainerInspect;
  error?: DockerError;
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

function mode(m: number): string {
  return (m & 0o7777).toString(8).padStart(4, '0');
}

function runningAs(): string {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const groups = process.getgroups?.() ?? [];
  return `uid ${uid ?? '?'} gid ${gid ?? '?'}${groups.length ? ` groups ${groups.join(',')}` : ''}`;
}

/** The daemon: reachable, its version and the negotiated API version. */
async function checkDaemon(client: DockerClient, facts: DaemonFacts): Promise<CheckResult> {
  const title = 'Docker daemon reachable';
  try {
    const api = await client.negotiate();
    const version = await client.get<{ Version?: string; ApiVersion?: string }>('/version');
    facts.info = await client.get<ApiInfo>('/info');
    try {
      const running = await client.get<ApiContainerSummary[]>('/containers/json', {
        limit: '1',
        filters: JSON.stringify({ status: ['running'] }),
      });
      const first = running[0];
      if (first)
        facts.container = await client.get<ApiContainerInspect>(`/containers/${first.Id}/json`);
    } catch {
      /* a container vanishing between list and inspect only means fewer per-container checks */
    }
    const detail = `Docker ${version.Version ?? '?'} at ${client.endpoint.url}, API ${api} (daemon's ${version.ApiVersion ?? '?'})`;
    const [major = 0, minor = 0] = (version.ApiVersion ?? '0.0').split('.').map(Number);
    const [minMajor = 0, minMinor = 0] = MIN_API_VERSION.split('.').map(Number);
    if (major < minMajor || (major === minMajor && minor < minMinor))
      return {
        id: 'daemon',
        title,
        status: 'warn',
        detail: `${detail}: older than API ${MIN_API_VERSION} (Docker 20.10), the oldest supported`,
        fix: 'Upgrade Docker Engine to 20.10 or newer; older daemons may lack fields the agent reads.',
      };
    return { id: 'daemon', title, status: 'ok', detail };
  } catch (err) {
    const e = err instanceof DockerError ? err : client.describeError(err);
    facts.error = e;
    const fixes: Record<DockerError['reason'], string> = {
      socket_missing:
        'Start dockerd, or point the agent at the right socket: mount it with -v /var/run/docker.sock:/var/run/docker.sock:ro, or set DOCKER_HOST / docker.host.',
      permission_denied:
        "Run the agent as root or in the socket's group (docker run --group-add <gid of the socket>); see the socket check below.",
      connection_refused:
        'Start dockerd (systemctl start docker) or correct DOCKER_HOST / docker.host.',
      timeout: 'The daemon is overloaded or hung: check `docker info` and the dockerd log.',
      http_error:
        'Check that DOCKER_HOST points at a Docker Engine API (not a proxy that rejects GET).',
      protocol_error: 'Check that DOCKER_HOST points at a Docker Engine API.',
      network_error:
        'Check DOCKER_HOST, TLS settings (docker.tls_verify, docker.cert_path) and the network path.',
      not_found: 'Check that DOCKER_HOST points at a Docker Engine API.',
    };
    return { id: 'daemon', title, status: 'fail', detail: e.message, fix: fixes[e.reason] };
  }
}

/** The unix socket: exists, is a socket, and this process may read and write it. */
async function checkSocket(client: DockerClient, facts: DaemonFacts): Promise<CheckResult> {
  const title = 'Docker socket permission';
  const sock = client.endpoint.socketPath;
  if (!sock)
    return {
      id: 'socket',
      title,
      status: 'ok',
      detail: `not a unix socket (${client.endpoint.url}): nothing to check`,
    };
  let st;
  try {
    st = await stat(sock);
  } catch (err) {
    if (errCode(err) === 'EACCES')
      return {
        id: 'socket',
        title,
        status: 'fail',
        detail: `cannot reach ${sock}: a directory on the way is not searchable by this process (${runningAs()})`,
        fix: `Run the agent as root, or mount the socket at a path this user can reach (e.g. -v /var/run/docker.sock:/var/run/docker.sock:ro) and add the socket's group (docker run --group-add <gid>).`,
      };
    return {
      id: 'socket',
      title,
      status: 'fail',
      detail: `${sock}: ${errCode(err)}`,
      fix: `Mount the host's Docker socket at ${sock} (-v /var/run/docker.sock:${sock}:ro) or set DOCKER_HOST to where it is.`,
    };
  }
  const owner = `owner uid ${st.uid} gid ${st.gid}, mode ${mode(st.mode)}`;
  if (!st.isSocket())
    return {
      id: 'socket',
      title,
      status: 'fail',
      detail: `${sock} is not a socket (${owner})`,
      fix: 'A bind mount of a socket that did not exist yet creates a directory: start dockerd first, remove the directory, and mount /var/run/docker.sock again.',
    };
  if (st.nlink === 0) {
    // No links left: deleted on the host, seen only through this mount. Stale once nothing
    // listens (refused); a daemon that still listens on it answers, until it restarts.
    const refused = facts.error?.reason === 'connection_refused';
    return {
      id: 'socket',
      title,
      status: refused ? 'fail' : 'warn',
      detail: refused
        ? `${sock} is a mount of a socket the daemon deleted (no links left, nothing listening): dockerd stopped or restarted while this container kept running, and the mount still shows the old socket`
        : `${sock} is a mount of a socket that was deleted on the host (no links left); its daemon still answers, but a restarted dockerd will not be reachable through it`,
      fix: refused
        ? "Restart the agent's container (docker restart <name>) so that it mounts the new socket; `harbormaster run` exits with status 75 by itself in this case, for the restart policy to do that."
        : "Find out what deleted the host's socket; restart the agent's container once dockerd has a socket at that path again.",
    };
  }
  let accessible = true;
  try {
    await access(sock, constants.R_OK | constants.W_OK);
  } catch {
    accessible = false;
  }
  if (!accessible || facts.error?.reason === 'permission_denied')
    return {
      id: 'socket',
      title,
      status: 'fail',
      detail: `${sock} (${owner}) is not readable and writable by this process (${runningAs()})`,
      fix: `Run the agent as root, or add its user to group ${st.gid} (docker run --group-add ${st.gid}; outside a container: usermod -aG docker <user>). The agent only sends GET requests, but connecting to a unix socket needs write permission.`,
    };
  return {
    id: 'socket',
    title,
    status: 'ok',
    detail: `${sock} (${owner}) is usable by ${runningAs()}`,
  };
}

type CgroupLayout =
  | { version: 'v2' }
  | { version: 'v1'; cpuacct?: string; memory?: string; hybrid: boolean }
  | { version: 'none' };

function detectCgroups(root: string): CgroupLayout {
  if (existsSync(path.join(root, 'cgroup.controllers'))) return { version: 'v2' };
  const find = (name: string): string | undefined => {
    for (const dir of [name, `cpu,${name}`, `${name},cpu`]) {
      const p = path.join(root, dir);
      if (existsSync(p)) return p;
    }
    return undefined;
  };
  const cpuacct = find('cpuacct');
  const memory = existsSync(path.join(root, 'memory')) ? path.join(root, 'memory') : undefined;
  if (!cpuacct && !memory) return { version: 'none' };
  return {
    version: 'v1',
    cpuacct,
    memory,
    hybrid: existsSync(path.join(root, 'unified', 'cgroup.controllers')),
  };
}

/** cgroup version and driver, and one container's counters readable. */
async function checkCgroup(config: Config, facts: DaemonFacts): Promise<CheckResult> {
  const title = 'cgroup version, driver and container counters';
  const root = config.cgroup_root;
  const layout = detectCgroups(root);
  if (layout.version === 'none')
    return {
      id: 'cgroup',
      title,
      status: 'fail',
      detail: `no cgroup hierarchy under ${root} (neither cgroup.controllers nor v1 controller directories)`,
      fix: `Mount the host's /sys/fs/cgroup read-only at ${root} (-v /sys/fs/cgroup:${root}:ro) or set cgroup_root / HARBORMASTER_CGROUP_ROOT.`,
    };
  const local = layout.version === 'v1' && layout.hybrid ? 'v1 (hybrid)' : layout.version;
  if (!facts.info)
    return {
      id: 'cgroup',
      title,
      status: 'warn',
      detail: `cgroup ${local} at ${root}; driver unknown (the daemon is not reachable)`,
      fix: 'Fix the daemon check first; then run doctor again.',
    };
  const driver = facts.info.CgroupDriver ?? 'cgroupfs';
  const daemonVersion = facts.info.CgroupVersion ? `v${facts.info.CgroupVersion}` : undefined;
  const base = `cgroup ${local} at ${root}, driver ${driver}`;
  if (daemonVersion && daemonVersion !== layout.version)
    return {
      id: 'cgroup',
      title,
      status: 'fail',
      detail: `${base}, but the daemon reports cgroup ${daemonVersion}`,
      fix: `${root} is not the host's cgroup filesystem: mount the host's /sys/fs/cgroup there (read-only).`,
    };
  const c = facts.container;
  if (!c)
    return {
      id: 'cgroup',
      title,
      status: 'ok',
      detail: `${base}; no running container to check its counters`,
    };
  // a daemon's own --cgroup-parent is not in inspect: learned as the agent does (inventory.ts)
  const rel = containerCgroupPath(
    c.Id,
    driver,
    c.HostConfig?.CgroupParent || (daemonCgroupParent(c, config.proc_root) ?? ''),
  );
  const files =
    layout.version === 'v2'
      ? [path.join(root, rel, 'cpu.stat'), path.join(root, rel, 'memory.current')]
      : [
          layout.cpuacct ? path.join(layout.cpuacct, rel, 'cpuacct.usage') : undefined,
          layout.memory ? path.join(layout.memory, rel, 'memory.usage_in_bytes') : undefined,
        ].filter((f): f is string => f !== undefined);
  const name = (c.Name ?? c.Id).replace(/^\//, '');
  for (const f of files) {
    try {
      await readFile(f, 'utf8');
    } catch (err) {
      return {
        id: 'cgroup',
        title,
        status: 'fail',
        detail: `${base}; cannot read ${f} of container ${name}: ${errCode(err)}`,
        fix:
          errCode(err) === 'ENOENT'
            ? `The cgroup path does not match: check that ${root} is the host's /sys/fs/cgroup (not the agent container's own, which shows only its own cgroup) and that the daemon's cgroup driver (${driver}) is what the host uses.`
            : `Make ${root} readable by the agent (cgroupfs files are world-readable by default; check the mount options and security profiles).`,
      };
    }
  }
  return {
    id: 'cgroup',
    title,
    status: 'ok',
    detail: `${base}; read ${files.length} counter files of container ${name}`,
  };
}

/** /proc/<pid>/net/dev of a running container (its network namespace), else of PID 1. */
async function checkProc(config: Config, facts: DaemonFacts): Promise<CheckResult> {
  const title = 'proc network namespaces readable';
  const pid = facts.container?.State?.Pid;
  const target = pid && pid > 0 ? pid : 1;
  const file = path.join(config.proc_root, String(target), 'net', 'dev');
  const whose =
    target === 1 ? 'PID 1' : `container ${(facts.container?.Name ?? '').replace(/^\//, '')}`;
  try {
    const text = await readFile(file, 'utf8');
    if (!text.includes('Inter-|'))
      return {
        id: 'proc',
        title,
        status: 'fail',
        detail: `${file} does not look like /proc/<pid>/net/dev`,
        fix: `Mount the host's /proc read-only at ${config.proc_root} (-v /proc:${config.proc_root}:ro) or set proc_root.`,
      };
    return { id: 'proc', title, status: 'ok', detail: `read ${file} (${whose})` };
  } catch (err) {
    const code = errCode(err);
    return {
      id: 'proc',
      title,
      status: 'fail',
      detail: `cannot read ${file} (${whose}): ${code}`,
      fix:
        code === 'ENOENT'
          ? `${config.proc_root} is not the host's /proc (the container's PID ${target} is not there): mount it with -v /proc:${config.proc_root}:ro, or set proc_root / HARBORMASTER_PROC_ROOT.`
          : `Run the agent as root, or relax the security profile that blocks reading /proc/<pid>/net (AppArmor/SELinux, hidepid= on the proc mount).`,
    };
  }
}

/** Maps a daemon log path under the agent's docker_root (the daemon may see another root). */
function agentLogPath(logPath: string, daemonRoot: string | undefined, agentRoot: string): string {
  if (!daemonRoot) return logPath;
  const r = daemonRoot.replace(/\/+$/, '');
  if (logPath.startsWith(`${r}/`)) return path.join(agentRoot, logPath.slice(r.length));
  return logPath;
}

/** `<docker_root>/containers` listable, and one container's json-file log readable. */
async function checkLogs(config: Config, facts: DaemonFacts): Promise<CheckResult> {
  const title = 'container log directory readable';
  if (!config.logs.enabled)
    return { id: 'logs', title, status: 'ok', detail: 'log shipping is disabled (logs.enabled)' };
  const dir = path.join(config.docker_root, 'containers');
  const fix = `Mount the host's /var/lib/docker/containers read-only at ${dir} and run the agent as root (the log files are 0640 root:root), or grant it CAP_DAC_READ_SEARCH (docker run --cap-add DAC_READ_SEARCH). Set docker_root / HARBORMASTER_DOCKER_ROOT if it is mounted elsewhere.`;
  try {
    await readdir(dir);
  } catch (err) {
    return {
      id: 'logs',
      title,
      status: 'fail',
      detail: `cannot list ${dir} (${runningAs()}): ${errCode(err)}`,
      fix,
    };
  }
  const c = facts.container;
  if (!c?.LogPath)
    return {
      id: 'logs',
      title,
      status: 'ok',
      detail: `${dir} is listable; no running container with a json-file log to open`,
    };
  const file = agentLogPath(c.LogPath, facts.info?.DockerRootDir, config.docker_root);
  try {
    const fh = await open(file, 'r');
    await fh.close();
  } catch (err) {
    return {
      id: 'logs',
      title,
      status: 'fail',
      detail: `cannot open ${file} (${runningAs()}): ${errCode(err)}`,
      fix,
    };
  }
  return { id: 'logs', title, status: 'ok', detail: `${dir} is listable and ${file} readable` };
}

/** state_dir: a file can be created and removed (or the directory can be created). */
async function checkState(config: Config): Promise<CheckResult> {
  const title = 'state directory writable';
  const dir = path.resolve(config.state_dir);
  const fix = `Make ${dir} writable by the agent (${runningAs()}): mount a volume there (-v harbormaster-state:${dir}), chown it to the agent's user, or set state_dir / HARBORMASTER_STATE_DIR / --state-dir.`;
  let st;
  try {
    st = await stat(dir);
  } catch (err) {
    if (errCode(err) !== 'ENOENT')
      return { id: 'state', title, status: 'fail', detail: `${dir}: ${errCode(err)}`, fix };
    // the agent creates it: the nearest existing ancestor must be writable
    let parent = path.dirname(dir);
    while (!existsSync(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent);
    try {
      await access(parent, constants.W_OK | constants.X_OK);
      return {
        id: 'state',
        title,
        status: 'ok',
        detail: `${dir} does not exist yet; the agent will create it in ${parent}`,
      };
    } catch (e) {
      return {
        id: 'state',
        title,
        status: 'fail',
        detail: `${dir} does not exist and ${parent} is not writable: ${errCode(e)}`,
        fix,
      };
    }
  }
  if (!st.isDirectory())
    return { id: 'state', title, status: 'fail', detail: `${dir} is not a directory`, fix };
  const probe = path.join(dir, `.doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'harbormaster doctor\n', { flag: 'wx' });
  } catch (err) {
    return {
      id: 'state',
      title,
      status: 'fail',
      detail: `cannot create a file in ${dir} (${runningAs()}): ${errCode(err)}`,
      fix,
    };
  }
  await rm(probe, { force: true });
  return { id: 'state', title, status: 'ok', detail: `created and removed a file in ${dir}` };
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.end();
      resolve();
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Every configured OTLP endpoint accepts TCP connections. */
async function checkOtlp(config: Config): Promise<CheckResult> {
  const title = 'OTLP endpoint reachable';
  const urls = new Map<string, string>();
  if (config.otlp.logs_endpoint) urls.set('logs', config.otlp.logs_endpoint);
  else if (config.otlp.endpoint) urls.set('logs', config.otlp.endpoint);
  if (config.otlp.traces_endpoint) urls.set('traces', config.otlp.traces_endpoint);
  else if (config.otlp.endpoint && !urls.has('traces')) urls.set('traces', config.otlp.endpoint);
  if (urls.size === 0)
    return {
      id: 'otlp',
      title,
      status: 'ok',
      detail: 'not configured (otlp.endpoint and otlp.logs_endpoint are empty)',
    };
  const timeoutMs = Math.min(5000, config.otlp.timeout_seconds * 1000);
  const seen = new Set<string>();
  const reached: string[] = [];
  for (const [signal, raw] of urls) {
    const u = new URL(raw);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const key = `${host}:${port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await tcpConnect(host, port, timeoutMs);
      reached.push(`${raw} (${signal})`);
    } catch (err) {
      return {
        id: 'otlp',
        title,
        status: 'fail',
        detail: `cannot connect to ${host}:${port} for ${raw} (${signal}): ${errCode(err)}`,
        fix: 'Start the OTLP receiver (e.g. an OpenTelemetry Collector with the otlp receiver on :4318) or correct OTEL_EXPORTER_OTLP_ENDPOINT / otlp.endpoint; from inside a container, 127.0.0.1 is the container itself unless it uses --network host.',
      };
    }
  }
  return { id: 'otlp', title, status: 'ok', detail: `accepts connections: ${reached.join(', ')}` };
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** Answers when a Harbormaster agent already serves /healthz there. */
function isHarbormaster(host: string, port: number): Promise<boolean> {
  const target = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return new Promise((resolve) => {
    const req = http.get({ host: target, port, path: '/healthz', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          const v = JSON.parse(body) as { components?: unknown };
          resolve(res.statusCode === 200 && typeof v.components === 'object');
        } catch {
          resolve(false);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The metrics address can be bound (or is already served by an agent). */
async function checkListen(config: Config): Promise<CheckResult> {
  const title = 'metrics port free';
  const { host, port } = splitListen(config.listen);
  const fix = `Stop what uses ${config.listen} or choose another address with --listen / HARBORMASTER_LISTEN (and publish that port).`;
  try {
    await new Promise<void>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen({ host: host || undefined, port, exclusive: true }, () =>
        srv.close(() => resolve()),
      );
    });
    return { id: 'listen', title, status: 'ok', detail: `${config.listen} can be bound` };
  } catch (err) {
    const code = errCode(err);
    if (code === 'EADDRINUSE' && (await isHarbormaster(host, port)))
      return {
        id: 'listen',
        title,
        status: 'warn',
        detail: `${config.listen} is in use by a running Harbormaster agent`,
        fix: 'Fine if doctor runs next to the agent (docker exec); otherwise stop the other agent or choose another --listen.',
      };
    return {
      id: 'listen',
      title,
      status: 'fail',
      detail: `cannot bind ${config.listen}: ${code}`,
      fix:
        code === 'EACCES'
          ? `Ports below 1024 need root or CAP_NET_BIND_SERVICE; use the default port 9105. ${fix}`
          : fix,
    };
  }
}

/** Runs every check in order against a loaded configuration. */
export async function diagnose(config: Config): Promise<DoctorReport> {
  const facts: DaemonFacts = {};
  const checks: CheckResult[] = [];
  let client: DockerClient | undefined;
  try {
    client = new DockerClient({
      host: config.docker.host,
      tlsVerify: config.docker.tls_verify,
      certPath: config.docker.cert_path,
      apiVersion: config.docker.api_version,
      requestTimeoutMs: Math.min(10_000, config.docker.request_timeout_seconds * 1000),
    });
  } catch (err) {
    // e.g. DOCKER_TLS_VERIFY=1 without certificates: a finding, not a crash
    const detail = (err as Error).message;
    const fix =
      'Check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem).';
    checks.push({ id: 'daemon', title: 'Docker daemon reachable', status: 'fail', detail, fix });
    checks.push({ id: 'socket', title: 'Docker socket permission', status: 'fail', detail, fix });
  }
  if (client) {
    try {
      checks.push(await checkDaemon(client, facts));
      checks.push(await checkSocket(client, facts));
    } finally {
      client.close();
    }
  }
  checks.push(await checkCgroup(config, facts));
  checks.push(await checkProc(config, facts));
  checks.push(await checkLogs(config, facts));
  checks.push(await checkState(config));
  checks.push(await checkOtlp(config));
  checks.push(await checkListen(config));
  checks.sort((a, b) => ORDER.indexOf(a.id) - ORDER.indexOf(b.id));
  const summary: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) summary[c.status] += 1;
  const exitCode = summary.fail > 0 ? EXIT.fail : summary.warn > 0 ? EXIT.warn : EXIT.ok;
  return { checks, summary, exitCode };
}

/** The human-readable report. */
export function renderReport(report: DoctorReport): string {
  const label: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const lines: string[] = [];
  report.checks.forEach((c, i) => {
    lines.push(`${label[c.status]}  ${i + 1}. ${c.title}: ${c.detail}`);
    if (c.fix && c.status !== 'ok') lines.push(`        fix: ${c.fix}`);
  });
  const { ok, warn, fail } = report.summary;
  lines.push(
    '',
    `${ok} ok, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failure${fail === 1 ? '' : 's'} (exit ${report.exitCode})`,
  );
  return lines.join('\n') + '\n';
}

export interface DoctorOptions {
  /** Flags as parsed by the CLI; `output` (text | json) is doctor's own, the rest is config. */
  flags: Record<string, string>;
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Where the report goes (default stdout). */
  write?: (s: string) => void;
  /** Where usage errors go (default stderr). Doctor writes nothing past these two. */
  writeError?: (s: string) => void;
}

/**
 * `harbormaster doctor [--output text|json]`: loads the configuration like `run` does (a
 * ConfigError propagates: the CLI exits 2), checks, prints, and returns the exit status.
 */
export async function runDoctor(opts: DoctorOptions): Promise<number> {
  const { output = 'text', ...flags } = opts.flags;
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  const writeError = opts.writeError ?? ((s: string) => process.stderr.write(s));
  if (output !== 'text' && output !== 'json') {
    writeError(`doctor: --output must be text or json, not ${output}\n`);
    return EXIT.usage;
  }
  const { config } = loadConfig({ file: opts.file, env: opts.env ?? process.env, flags });
  const report = await diagnose(config);
  // Secrets never printed: the report names endpoints, which may carry user:password@.
  write(
    maskSecretsInString(
      output === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderReport(report),
    ),
  );
  return report.exitCode;
}
