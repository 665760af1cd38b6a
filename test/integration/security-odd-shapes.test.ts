// Security posture of `docker run` flag combinations the daemon resolves in a way the flags alone
// do not say, on the private dockerd with the built agent. Each case also reads the container's
// own /proc/1/status, so the expected finding is what the kernel really applied.
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const SYS_ADMIN_BIT = 21n;

function lines(text: string, family: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(family + '{') && l.includes(`,name="${name}"`));
}

describeDocker('security posture of odd flag combinations', () => {
  let agent: AgentProcess;

  beforeAll(async () => {
    agent = await startAgent({
      dockerHost: getDocker().host,
      env: { HARBORMASTER_LOGS_ENABLED: 'false' },
    });
  });
  afterAll(async () => {
    await agent?.stop();
  });

  async function started(flags: string[]): Promise<{ name: string; status: string }> {
    const name = uniqueName('sec-odd');
    await runContainer(['-d', '--name', name, ...flags, TEST_IMAGE, 'sleep', '600']);
    const status = (await getDocker().docker(['exec', name, 'cat', '/proc/1/status'])).stdout;
    await waitFor(
      async () =>
        lines((await agent.get('/metrics')).text, 'container_security_privileged', name).length ===
        1,
      30_000,
      150,
      `posture of ${name}`,
    );
    return { name, status };
  }

  it('judges what the daemon applied, not what the flags seem to say', async () => {
    const [addDrop, nnpOff, varLib] = await Promise.all([
      started(['--cap-add', 'SYS_ADMIN', '--cap-drop', 'SYS_ADMIN']),
      started(['--security-opt', 'no-new-privileges=0']),
      started(['-v', '/var/lib:/host-var-lib:ro']),
    ]);
    // the kernel's view first: the add won over the drop; no-new-privileges=0 is off
    const capEff = BigInt('0x' + (/CapEff:\s*([0-9a-f]+)/.exec(addDrop.status)?.[1] ?? '0'));
    expect((capEff >> SYS_ADMIN_BIT) & 1n).toBe(1n);
    expect(nnpOff.status).toMatch(/NoNewPrivs:\s*0/);

    const text = (await agent.get('/metrics')).text;
    expect(lines(text, 'container_security_capability_added', addDrop.name)).toEqual([
      expect.stringContaining('capability="SYS_ADMIN"'),
    ]);
    expect(lines(text, 'container_security_findings', addDrop.name).join('\n')).toContain(
      'check="capabilities"',
    );
    expect(lines(text, 'container_security_no_new_privileges', nnpOff.name)).toEqual([
      expect.stringMatching(/ 0$/),
    ]);
    expect(lines(text, 'container_security_findings', nnpOff.name).join('\n')).toContain(
      'check="no_new_privileges"',
    );
    expect(lines(text, 'container_security_sensitive_mount', varLib.name)).toEqual([
      expect.stringContaining('path="/var/lib/docker"'),
    ]);
    expect(lines(text, 'container_security_findings', varLib.name).join('\n')).toContain(
      'check="sensitive_mount"',
    );
  });
});
