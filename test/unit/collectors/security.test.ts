import { describe, expect, it } from 'vitest';
import { securityFromInspect } from '../../../src/docker/inventory.js';
import type { ApiContainerInspect } from '../../../src/docker/api-types.js';
import type { ContainerInfo } from '../../../src/docker/types.js';
import {
  CHECK_NAMES,
  assessPosture,
  globMatch,
  parseAllowRule,
  type SecurityCheck,
} from '../../../src/collectors/security-posture.js';
import {
  SecurityMetrics,
  enginePostureFromInfo,
  renderEnginePosture,
  selfContainerId,
} from '../../../src/collectors/security.js';
import { loadConfig } from '../../../src/config/load.js';
import type { EngineInfo } from '../../../src/docker/inventory.js';
import { StaticSource, containerInfo, promtoolCheck, silentLogger } from './helpers.js';

/** A running container as `docker run <flags>` would leave it in inspect (HostConfig subset). */
function inspected(
  hc: NonNullable<ApiContainerInspect['HostConfig']>,
  extra: Partial<ApiContainerInspect> = {},
): ContainerInfo {
  const c: ApiContainerInspect = { Id: 'x', HostConfig: hc, Config: { User: '' }, ...extra };
  return containerInfo({
    security: securityFromInspect(c),
    networkMode: hc.NetworkMode ?? 'none',
    spec: {
      ...containerInfo().spec,
      memoryLimit: hc.Memory ?? 0,
      pidsLimit: hc.PidsLimit ?? 0,
    },
  });
}

const ENGINE = { usernsRemap: false, rootless: false };
const failed = (info: ContainerInfo, engine = ENGINE): SecurityCheck[] =>
  assessPosture(info.security!, info, { engine }).failed;

/** What every container fails unless it says otherwise (busybox defaults). */
const BASE: SecurityCheck[] = [
  'run_as_root',
  'no_new_privileges',
  'read_only_rootfs',
  'memory_limit',
  'pids_limit',
];
const plus = (...c: SecurityCheck[]): SecurityCheck[] =>
  CHECK_NAMES.filter((x) => BASE.includes(x) || c.includes(x));
const minus = (...c: SecurityCheck[]): SecurityCheck[] => BASE.filter((x) => !c.includes(x));

describe('container security posture', () => {
  it.each<[string, ContainerInfo, SecurityCheck[]]>([
    ['defaults', inspected({}), BASE],
    ['--privileged', inspected({ Privileged: true }), plus('privileged')],
    [
      '-v /var/run/docker.sock:/var/run/docker.sock',
      inspected(
        {},
        {
          Mounts: [
            {
              Type: 'bind',
              Source: '/var/run/docker.sock',
              Destination: '/var/run/docker.sock',
              RW: true,
            },
          ],
        },
      ),
      plus('docker_socket'),
    ],
    ['--cap-add NET_ADMIN', inspected({ CapAdd: ['NET_ADMIN'] }), plus('capabilities')],
    ['--cap-add CHOWN (a default one)', inspected({ CapAdd: ['CAP_CHOWN'] }), BASE],
    ['--pid host', inspected({ PidMode: 'host' }), plus('host_namespace')],
    ['--network host', inspected({ NetworkMode: 'host' }), plus('host_namespace')],
    [
      '--security-opt seccomp=unconfined',
      inspected({ SecurityOpt: ['seccomp=unconfined'] }),
      plus('seccomp'),
    ],
    [
      '--security-opt apparmor:unconfined (old syntax)',
      inspected({ SecurityOpt: ['apparmor:unconfined'] }),
      plus('apparmor'),
    ],
    ['--user 1000', inspected({}, { Config: { User: '1000' } }), minus('run_as_root')],
    ['--user 0:1000 is root', inspected({}, { Config: { User: '0:1000' } }), BASE],
    [
      '--read-only --security-opt no-new-privileges',
      inspected({ ReadonlyRootfs: true, SecurityOpt: ['no-new-privileges'] }),
      minus('read_only_rootfs', 'no_new_privileges'),
    ],
    [
      '--security-opt no-new-privileges=false',
      inspected({ SecurityOpt: ['no-new-privileges=false'] }),
      BASE,
    ],
    [
      '--memory 64m --pids-limit 50',
      inspected({ Memory: 64 << 20, PidsLimit: 50 }),
      minus('memory_limit', 'pids_limit'),
    ],
    [
      '-v /etc/ssl:/ssl:ro',
      inspected(
        {},
        { Mounts: [{ Type: 'bind', Source: '/etc/ssl', Destination: '/ssl', RW: false }] },
      ),
      plus('sensitive_mount'),
    ],
    [
      'a named volume at /etc is not a host path',
      inspected(
        {},
        { Mounts: [{ Type: 'volume', Source: '/var/lib/docker/volumes/x', Destination: '/etc' }] },
      ),
      BASE,
    ],
  ])('%s: exactly the expected findings', (_name, info, want) => {
    expect(failed(info)).toEqual(want);
  });

  it('reports the socket and the directories holding it, and sensitive paths by prefix', () => {
    const info = inspected(
      {},
      {
        Mounts: [
          { Type: 'bind', Source: '/run', Destination: '/host-run' },
          { Type: 'bind', Source: '/', Destination: '/host' },
          { Type: 'bind', Source: '/proc/sys/', Destination: '/p' },
          { Type: 'bind', Source: '/etcetera', Destination: '/e' },
        ],
      },
    );
    const p = assessPosture(info.security!, info, { engine: ENGINE });
    expect(p.dockerSocketMounted).toBe(true);
    expect(p.sensitiveMounts).toEqual(['/', '/proc', '/var/run/docker.sock']);
  });

  it('recognises the socket of the daemon the agent uses, wherever it lives', () => {
    const info = inspected(
      {},
      { Mounts: [{ Type: 'bind', Source: '/tmp/d1/docker.sock', Destination: '/s.sock' }] },
    );
    const sec = info.security!;
    expect(assessPosture(sec, info, { engine: ENGINE }).dockerSocketMounted).toBe(false);
    expect(
      assessPosture(sec, info, { engine: ENGINE, socketPaths: ['/tmp/d1/docker.sock'] })
        .dockerSocketMounted,
    ).toBe(true);
  });

  it('takes user-namespace remapping and rootless daemons into account for root', () => {
    const root = inspected({});
    expect(failed(root, { usernsRemap: true, rootless: false })).not.toContain('run_as_root');
    expect(failed(root, { usernsRemap: false, rootless: true })).not.toContain('run_as_root');
    const optOut = inspected({ UsernsMode: 'host' });
    const p = assessPosture(optOut.security!, optOut, {
      engine: { usernsRemap: true, rootless: false },
    });
    expect(p.runAsRoot).toBe(true);
    expect(p.hostNamespaces).toEqual(['user']);
  });

  it('bounds capability labels: unknown names become other; an add also dropped still counts (the daemon grants it)', () => {
    const info = inspected({
      CapAdd: ['sys_admin', 'CAP_NET_ADMIN', 'EVIL_"\n', 'SYS_PTRACE'],
      CapDrop: ['SYS_PTRACE'],
    });
    expect(assessPosture(info.security!, info, { engine: ENGINE }).capabilitiesAdded).toEqual([
      'NET_ADMIN',
      'SYS_ADMIN',
      'SYS_PTRACE',
      'other',
    ]);
  });
});

describe('allow lists', () => {
  it('parses config entries and names the bad ones', () => {
    expect(parseAllowRule('docker_socket@name=harbormaster*')).toEqual({
      check: 'docker_socket',
      field: 'name',
      glob: 'harbormaster*',
    });
    expect(() => parseAllowRule('privileged')).toThrow(/"privileged".*<check>@name=<glob>/);
    expect(() => parseAllowRule('root@image=x')).toThrow(/unknown check "root"/);
  });

  it('matches globs in linear time, even on hostile patterns', () => {
    expect(globMatch('portainer*', 'portainer-agent')).toBe(true);
    expect(globMatch('*/cadvisor:v?.*', 'gcr.io/cadvisor:v0.49')).toBe(true);
    expect(globMatch('web', 'web-1')).toBe(false);
    const t0 = performance.now();
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    // exponential backtracking would not finish; the two-pointer match takes milliseconds
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  function metrics(list: ContainerInfo[], o: { allow?: string[]; labelChecks?: string[] } = {}) {
    const src = new StaticSource(list);
    const m = new SecurityMetrics({
      inventory: src,
      logger: silentLogger,
      allow: o.allow,
      labelAllowChecks: o.labelChecks,
    });
    m.start();
    return { src, m };
  }
  const findings = (text: string, name: string, family = 'container_security_findings') =>
    text
      .split('\n')
      .filter((l) => l.startsWith(family + '{') && l.includes(`name="${name}"`))
      .map((l) => /check="([a-z_]+)"/.exec(l)?.[1])
      .sort();

  it('moves findings of config-allowed containers to findings_allowed', () => {
    const priv = inspected({ Privileged: true });
    const a = { ...priv, id: 'a'.repeat(64), name: 'portainer' };
    const b = { ...priv, id: 'b'.repeat(64), name: 'web' };
    const { m } = metrics([a, b], { allow: ['privileged@name=portainer'] });
    const text = m.render();
    expect(findings(text, 'portainer')).toEqual([...BASE].sort());
    expect(findings(text, 'portainer', 'container_security_findings_allowed')).toEqual([
      'privileged',
    ]);
    expect(findings(text, 'web')).toContain('privileged');
    // the fact itself stays visible
    expect(text).toMatch(/container_security_privileged\{[^}]*name="portainer"[^}]*\} 1/);
  });

  it('honours the allow label only for checks the operator lets labels exempt', () => {
    const info = {
      ...inspected({ Privileged: true }),
      labels: { 'harbormaster.security.allow': 'privileged, run_as_root,bogus' },
    };
    expect(findings(metrics([info]).m.render(), 'web-1')).toContain('privileged');
    const { m } = metrics([info], { labelChecks: ['privileged'] });
    const text = m.render();
    expect(findings(text, 'web-1')).not.toContain('privileged');
    expect(findings(text, 'web-1')).toContain('run_as_root');
  });

  it('serves running containers only, follows changes, and passes promtool', () => {
    const info = inspected({ Privileged: true, CapAdd: ['NET_ADMIN'], PidMode: 'host' });
    const { src, m } = metrics([info]);
    const text = m.render();
    expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
    expect(text).toContain('container_security_capability_added{');
    expect(text).toContain('capability="NET_ADMIN"');
    expect(text).toContain('namespace="pid"');
    expect(text).toMatch(/check="privileged",severity="critical",cis="5.4"\} 1/);
    src.set({ ...info, state: 'exited' });
    expect(m.render()).toBe('');
    src.set({ ...info, state: 'running', security: inspected({}).security });
    expect(m.render()).toContain('container_security_privileged{');
    expect(m.render()).not.toContain('check="privileged"');
  });
});

describe('security configuration and engine posture', () => {
  it('rejects bad allow entries and label checks, naming them and their source', () => {
    expect(() =>
      loadConfig({
        env: {
          HARBORMASTER_SECURITY_ALLOW: 'privileged@name=ok,root@name=x',
          HARBORMASTER_SECURITY_LABEL_ALLOW_CHECKS: 'docker_socket,everything',
        },
      }),
    ).toThrow(
      /security\.allow\.1: expected <check>@name=<glob>[\s\S]*HARBORMASTER_SECURITY_ALLOW[\s\S]*security\.label_allow_checks\.1: expected a check name/,
    );
    const ok = loadConfig({
      env: { HARBORMASTER_SECURITY_ALLOW: 'docker_socket@image=portainer/*' },
    });
    expect(ok.config.security.allow).toEqual(['docker_socket@image=portainer/*']);
    expect(ok.config.security.label_allow_checks).toEqual([]);
  });

  it('reads remapping, rootless and the default seccomp profile from /info', () => {
    const engine = (opts: string[], live = false) => ({
      apiVersion: '1.43',
      serverVersion: '24.0.7',
      storageDriver: 'overlay2',
      cgroupDriver: 'cgroupfs',
      cgroupVersion: '1',
      dockerRootDir: '/var/lib/docker',
      info: { SecurityOptions: opts, LiveRestoreEnabled: live },
    });
    const p = enginePostureFromInfo(
      engine(['name=seccomp,profile=builtin', 'name=userns', 'name=apparmor'], true),
      { tcpWithoutTls: true, icc: false, buildTimeMs: Date.UTC(2024, 0, 2) },
    )!;
    expect(p).toMatchObject({
      usernsRemap: true,
      rootless: false,
      seccompDefault: true,
      liveRestore: true,
      icc: false,
      tcpWithoutTls: true,
    });
    const text = renderEnginePosture(p, new Set(['docker_engine_security_rootless']));
    expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
    expect(text).toContain('docker_engine_security_userns_remap 1\n');
    expect(text).toContain('docker_engine_security_tcp_without_tls 1\n');
    expect(text).toContain(
      `docker_engine_security_build_timestamp_seconds ${Date.UTC(2024, 0, 2) / 1000}\n`,
    );
    expect(text).not.toContain('docker_engine_security_rootless');
    const bare = enginePostureFromInfo(
      engine(['name=rootless', 'name=seccomp,profile=unconfined']),
      {
        tcpWithoutTls: false,
      },
    )!;
    expect(bare).toMatchObject({ rootless: true, seccompDefault: false, icc: undefined });
    expect(renderEnginePosture(bare, new Set())).not.toContain('docker_engine_security_icc');
  });

  it('re-judges root when the engine turns out to remap users', () => {
    const src = new StaticSource([inspected({})]);
    const daemon: { engine?: EngineInfo } = {};
    const m = new SecurityMetrics({
      inventory: Object.assign(src, { engine: () => daemon.engine }),
      logger: silentLogger,
    });
    m.start();
    expect(m.findings(containerInfo().id)?.failed).toContain('run_as_root');
    daemon.engine = {
      apiVersion: '1.43',
      serverVersion: '24.0.7',
      storageDriver: 'overlay2',
      cgroupDriver: 'cgroupfs',
      cgroupVersion: '1',
      dockerRootDir: '/var/lib/docker',
      info: { SecurityOptions: ['name=userns'] },
    };
    expect(m.render()).toMatch(/container_security_run_as_root\{[^}]*\} 0/);
    expect(m.findings(containerInfo().id)?.failed).not.toContain('run_as_root');
  });

  it("recognises the agent's own container from its mountinfo", () => {
    const id = 'f'.repeat(64);
    const mountinfo = `1 0 8:1 / / rw - overlay overlay rw\n2 1 8:1 /var/lib/docker/containers/${id}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n`;
    expect(selfContainerId(mountinfo)).toBe(id);
    expect(selfContainerId('1 0 8:1 / / rw - ext4 /dev/sda1 rw\n')).toBeUndefined();
  });
});
