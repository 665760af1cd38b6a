// Issue 18 acceptance: container security posture and the exec audit trail, on the private
// dockerd with the built agent, a real OTLP/protobuf-decoding receiver and a real Prometheus
// loading alerts/security.rules.yml.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  harness,
  runContainer,
  startOwnDockerd,
  startAgent,
  startPrometheus,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
  type PrivateDockerd,
  type PrometheusServer,
} from './harness/index.js';
import {
  allLogRecords,
  allSpans,
  anyValue,
  attrs,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../support/otlp-receiver.js';

/** Checks a stock `docker run` fails (busybox: root, writable, no limits, may gain privileges). */
const BASE = ['memory_limit', 'no_new_privileges', 'pids_limit', 'read_only_rootfs', 'run_as_root'];
const plus = (...c: string[]): string[] => [...BASE, ...c].sort();
const minus = (...c: string[]): string[] => BASE.filter((x) => !c.includes(x));

/** Sample lines of `family` for the container `name`. */
function lines(text: string, family: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(family + '{') && l.includes(`,name="${name}"`));
}

/** The `check` labels of a findings family for a container, sorted. */
function checks(text: string, name: string, family = 'container_security_findings'): string[] {
  return lines(text, family, name)
    .map((l) => /check="([a-z_]+)"/.exec(l)?.[1] ?? '?')
    .sort();
}

function value(text: string, family: string, name: string, extra = ''): number | undefined {
  const l = lines(text, family, name).find((x) => x.includes(extra));
  return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(' ') + 1));
}

const RUNC = '/usr/sbin/runc';

/** Capabilities in kernel bit order (capability.h), for reading a CapBnd mask. */
const CAPS =
  'CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE'.split(
    ' ',
  );

/**
 * A runtime for the test dockerd that runs runc after removing, from a new container's
 * capabilities, those the machine running the tests does not have itself (in a CI container
 * some are missing, and `--privileged` asks for all of them, so runc would refuse to start it).
 * Docker's view (inspect) is untouched, and on a machine with every capability it changes nothing.
 */
async function cappedRuntime(dir: string): Promise<string> {
  const script = path.join(dir, 'capped-runc.mjs');
  await writeFile(
    script,
    `import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const CAPS = ${JSON.stringify(CAPS)};
const bnd = BigInt('0x' + /CapBnd:\\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const have = new Set(CAPS.filter((_, i) => (bnd >> BigInt(i)) & 1n).map((c) => 'CAP_' + c));
const args = process.argv.slice(2);
if (args.includes('create') || args.includes('run')) {
  const b = args.indexOf('--bundle') >= 0 ? args.indexOf('--bundle') : args.indexOf('-b');
  const file = (b >= 0 ? args[b + 1] : process.cwd()) + '/config.json';
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  const caps = spec.process?.capabilities ?? {};
  for (const k of Object.keys(caps)) caps[k] = (caps[k] ?? []).filter((c) => have.has(c));
  writeFileSync(file, JSON.stringify(spec));
}
const r = spawnSync(${JSON.stringify(RUNC)}, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
`,
  );
  const wrapper = path.join(dir, 'capped-runc');
  await writeFile(
    wrapper,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)} "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  return wrapper;
}
describeDocker('security posture and exec audit (issue 18)', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess;
  let prom: PrometheusServer;
  let d: PrivateDockerd;
  let tmp: string;
  let socket: string;
  const allowedName = uniqueName('allowed');

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hm-sec-'));
    d = await startOwnDockerd({
      extraArgs: [
        '--add-runtime',
        `hm-capped=${await cappedRuntime(tmp)}`,
        '--default-runtime',
        'hm-capped',
      ],
    });
    socket = d.socketPath;
    rx = await startOtlpReceiver();
    agent = await startAgent({
      dockerHost: d.host,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '',
        // exec audit records only: they go through log shipping, which ships no container's lines
        HARBORMASTER_LOGS_EXCLUDE_CONTAINERS: 'name:*',
        HARBORMASTER_SECURITY_ALLOW: `privileged@name=${allowedName}`,
        HARBORMASTER_SECURITY_LABEL_ALLOW_CHECKS: 'docker_socket',
        HARBORMASTER_LIFECYCLE_TRACES_BATCH_DELAY_SECONDS: '0.2',
      },
    });
    await waitFor(
      async () => (await agent.get('/readyz')).status === 200,
      30_000,
      100,
      'agent ready',
    );
    prom = await startPrometheus({
      targets: [`127.0.0.1:${agent.port}`],
      ruleFiles: [path.join(harness().repoRoot, 'alerts/security.rules.yml')],
    });
  });
  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
    await rx?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const metrics = async (): Promise<string> => (await agent.get('/metrics')).text;

  /** Starts `sleep 600` with the flags and waits until the agent serves its posture. */
  async function started(flags: string[], name = uniqueName('sec')): Promise<string> {
    await runContainer(['-d', '--name', name, ...flags, TEST_IMAGE, 'sleep', '600'], {
      docker: d,
    });
    await waitFor(
      async () => lines(await metrics(), 'container_security_privileged', name).length === 1,
      30_000,
      150,
      `posture of ${name}`,
    );
    return name;
  }

  it('1. each docker run flag shows exactly the findings it should and no others', async () => {
    const cases: Array<[string, string[], string[]]> = [
      ['--privileged', ['--privileged'], plus('privileged')],
      ['the Docker socket', ['-v', `${socket}:/var/run/docker.sock`], plus('docker_socket')],
      ['--cap-add NET_ADMIN', ['--cap-add', 'NET_ADMIN'], plus('capabilities')],
      ['--pid host', ['--pid', 'host'], plus('host_namespace')],
      [
        '--security-opt seccomp=unconfined',
        ['--security-opt', 'seccomp=unconfined'],
        plus('seccomp'),
      ],
      ['--user 1000', ['--user', '1000'], minus('run_as_root')],
      [
        '--read-only --security-opt no-new-privileges',
        ['--read-only', '--security-opt', 'no-new-privileges'],
        minus('read_only_rootfs', 'no_new_privileges'),
      ],
      [
        '--memory 64m --pids-limit 50',
        ['--memory', '64m', '--pids-limit', '50'],
        minus('memory_limit', 'pids_limit'),
      ],
    ];
    const names = await Promise.all(cases.map(([, flags]) => started(flags)));
    const text = await metrics();
    cases.forEach(([what, , want], i) => {
      expect(checks(text, names[i]!), what).toEqual(want);
      expect(checks(text, names[i]!, 'container_security_findings_allowed'), what).toEqual([]);
    });
    const [priv, sock, cap, pid, seccomp, user, ro, limits] = names as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    expect(value(text, 'container_security_privileged', priv)).toBe(1);
    expect(value(text, 'container_security_privileged', cap)).toBe(0);
    expect(value(text, 'container_security_docker_socket_mounted', sock)).toBe(1);
    expect(lines(text, 'container_security_sensitive_mount', sock)).toEqual([
      expect.stringContaining('path="/var/run/docker.sock"'),
    ]);
    expect(lines(text, 'container_security_capability_added', cap)).toEqual([
      expect.stringContaining('capability="NET_ADMIN"'),
    ]);
    expect(lines(text, 'container_security_host_namespace', pid)).toEqual([
      expect.stringContaining('namespace="pid"'),
    ]);
    expect(value(text, 'container_security_seccomp_unconfined', seccomp)).toBe(1);
    expect(value(text, 'container_security_run_as_root', user)).toBe(0);
    expect(value(text, 'container_security_read_only_rootfs', ro)).toBe(1);
    expect(value(text, 'container_security_no_new_privileges', ro)).toBe(1);
    expect(value(text, 'container_security_memory_unlimited', limits)).toBe(0);
    expect(value(text, 'container_security_pids_unlimited', limits)).toBe(0);
    expect(value(text, 'container_security_findings', priv, 'check="privileged"')).toBe(1);
    expect(lines(text, 'container_security_findings', priv).join('\n')).toContain(
      'check="privileged",severity="critical",cis="5.4"',
    );
    // a stopped container runs nothing: its posture series go
    await d.docker(['rm', '-f', limits]);
    await waitFor(
      async () => lines(await metrics(), 'container_security_findings', limits).length === 0,
      30_000,
      150,
      'posture of a removed container to go',
    );
  });

  it('2. allow-listed containers show no finding for what they are allowed', async () => {
    await started(['--privileged'], allowedName);
    // the label may exempt docker_socket (security.label_allow_checks) but not privileged
    const labelled = await started([
      '--privileged',
      '-v',
      `${socket}:/var/run/docker.sock`,
      '--label',
      'harbormaster.security.allow=docker_socket,privileged',
    ]);
    const text = await metrics();
    expect(checks(text, allowedName)).toEqual(BASE);
    expect(checks(text, allowedName, 'container_security_findings_allowed')).toEqual([
      'privileged',
    ]);
    expect(value(text, 'container_security_privileged', allowedName)).toBe(1);
    expect(checks(text, labelled)).toEqual(plus('privileged'));
    expect(checks(text, labelled, 'container_security_findings_allowed')).toEqual([
      'docker_socket',
    ]);
  });

  it('3. docker exec exiting 3: counter +1, exec events on the run span, an audit record with command and exit code 3', async () => {
    const name = await started(['--label', 'environment=production']);
    const id = (await d.docker(['inspect', '-f', '{{.Id}}', name])).stdout.trim();
    const exec = (action: string) => async () =>
      value(await metrics(), 'container_exec_total', name, `action="${action}"`);
    expect(await exec('exec_start')()).toBe(0);
    const r = await d.docker(['exec', '-u', 'nobody', name, 'sh', '-c', 'exit 3']);
    expect(r.code).toBe(3);
    for (const action of ['exec_create', 'exec_start', 'exec_die'])
      await waitFor(async () => (await exec(action)()) === 1, 20_000, 150, `${action} == 1`);

    const audit = await waitFor(
      () =>
        allLogRecords(rx.logs()).find((l) => {
          const a = attrs(l.attributes);
          return l.resource['container.id'] === id && a['container.exec.phase'] === 'exit';
        }),
      20_000,
      150,
      'exec audit record',
    );
    expect(audit.eventName).toBe('container.exec');
    expect(attrs(audit.attributes)).toMatchObject({
      'process.command_line': 'sh -c exit 3',
      'process.exit.code': 3,
      'process.user.name': 'nobody',
      'container.exec.privileged': false,
      'container.exec.tty': false,
    });
    expect(anyValue(audit.body)).toBe(
      `docker exec in ${name} ended with exit code 3: sh -c exit 3`,
    );
    expect(audit.resource['container.name']).toBe(name);

    // the run span is exported when the run ends
    await d.docker(['kill', name]);
    const span = await waitFor(
      () => allSpans(rx.traces()).find((s) => attrs(s.attributes)['container.id'] === id),
      20_000,
      150,
      'run span',
    );
    const execEvents = span.events
      .filter((e) => e.name.startsWith('exec_'))
      .map((e) => [e.name, attrs(e.attributes)]);
    expect(execEvents).toEqual([
      ['exec_create', expect.objectContaining({ 'process.command_line': 'sh -c exit 3' })],
      ['exec_start', expect.any(Object)],
      ['exec_die', expect.objectContaining({ 'process.exit.code': 3 })],
    ]);
  });

  it('3b. health-check probes (execs the daemon runs itself) are neither counted nor audited', async () => {
    const name = await started(['--health-cmd', 'true', '--health-interval', '1s']);
    const id = (await d.docker(['inspect', '-f', '{{.Id}}', name])).stdout.trim();
    // several probes have run once the container is healthy and the daemon reports it
    await waitFor(
      async () =>
        (await d.docker(['inspect', '-f', '{{.State.Health.Status}}', name])).stdout.trim() ===
          'healthy' &&
        Number((await d.docker(['inspect', '-f', '{{len .State.Health.Log}}', name])).stdout) >= 2,
      30_000,
      200,
      'two health probes',
    );
    // the agent has handled the probes' exec events once it reports the health_status event
    // that follows them in the event stream
    const text = await waitFor(
      async () => {
        const t = await metrics();
        return value(t, 'container_health_state', name, 'state="healthy"') === 1 && t;
      },
      30_000,
      200,
      'the agent to report healthy',
    );
    for (const action of ['exec_create', 'exec_start', 'exec_die'])
      expect(value(text, 'container_exec_total', name, `action="${action}"`), action).toBe(0);
    expect(allLogRecords(rx.logs()).filter((l) => l.resource['container.id'] === id)).toEqual([]);
  });

  it('4. the security rules load in Prometheus and the privileged alert fires for a privileged container', async () => {
    const name = await started(['--privileged']);
    const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ name: string; rules: Array<{ name: string; health: string }> }> };
    };
    const group = rules.data.groups.find((g) => g.name === 'harbormaster-security');
    expect(group?.rules.map((r) => [r.name, r.health])).toEqual([
      ['ContainerPrivilegedRunning', expect.stringMatching(/ok|unknown/)],
      ['ContainerDockerSocketMounted', expect.stringMatching(/ok|unknown/)],
      ['ContainerHostNamespaceShared', expect.stringMatching(/ok|unknown/)],
      ['ContainerExecInProduction', expect.stringMatching(/ok|unknown/)],
    ]);
    const firing = await waitFor(
      async () => {
        const r = await prom.query(
          `ALERTS{alertname="ContainerPrivilegedRunning",alertstate="firing",name="${name}"}`,
        );
        return r.length === 1 && r;
      },
      60_000,
      500,
      'ContainerPrivilegedRunning firing',
    );
    expect(firing[0]!.metric.severity).toBe('critical');
    // the allow-listed privileged container does not alert
    expect(
      await prom.query(`ALERTS{alertname="ContainerPrivilegedRunning",name="${allowedName}"}`),
    ).toEqual([]);
  });
  it('5. the engine posture comes from /info, /version and the agent settings', async () => {
    const text = await metrics();
    const v = (name: string): number | undefined => {
      const l = text.split('\n').find((x) => x.startsWith(name + ' '));
      return l === undefined ? undefined : Number(l.slice(name.length + 1));
    };
    const opts = JSON.parse(
      await d.dockerOk(['info', '--format', '{{json .SecurityOptions}}']),
    ) as string[];
    expect(v('docker_engine_security_userns_remap')).toBe(
      opts.some((o) => o.includes('name=userns')) ? 1 : 0,
    );
    expect(v('docker_engine_security_rootless')).toBe(0);
    expect(v('docker_engine_security_seccomp_default_profile')).toBe(
      opts.some((o) => /name=seccomp,profile=(default|builtin)/.test(o)) ? 1 : 0,
    );
    expect(v('docker_engine_security_live_restore')).toBe(0);
    expect(v('docker_engine_security_tcp_without_tls')).toBe(0);
    const built = v('docker_engine_security_build_timestamp_seconds');
    expect(built).toBeGreaterThan(Date.UTC(2015, 0, 1) / 1000);
    expect(built).toBeLessThan(Date.now() / 1000 + 86_400);
    // the test daemon runs with --bridge=none: no default bridge, nothing to judge, no error
    expect(v('docker_engine_security_icc')).toBeUndefined();
    expect(text).not.toMatch(/harbormaster_security_engine_errors_total\{[^}]*\} [1-9]/);
  });
});
