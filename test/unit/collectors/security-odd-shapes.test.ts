// Posture for HostConfig shapes beyond the plain `docker run` flags, as a real dockerd (27.x,
// runc) stores and applies them; each case states what /proc/1/status of the container showed:
// - `--cap-add SYS_ADMIN --cap-drop SYS_ADMIN`: CapAdd and CapDrop both ["CAP_SYS_ADMIN"], and
//   CapEff has SYS_ADMIN (the daemon drops from the default set, then grants every add);
// - `--cap-add ALL --cap-drop ALL`: every capability (moby TweakCapabilities: an ALL add wins);
// - `--security-opt no-new-privileges=0` / `=False`: SecurityOpt keeps the text, NoNewPrivs is 0;
//   `=1`, `:true`: NoNewPrivs is 1 (the daemon parses the value with Go's strconv.ParseBool);
// - `-v /var/lib:/host`: the Docker data root is below the mounted directory.
import { describe, expect, it } from 'vitest';
import type { ApiContainerInspect } from '../../../src/docker/api-types.js';
import { securityFromInspect } from '../../../src/docker/inventory.js';
import type { ContainerInfo } from '../../../src/docker/types.js';
import { assessPosture } from '../../../src/collectors/security-posture.js';
import { containerInfo } from './helpers.js';

const ENGINE = { usernsRemap: false, rootless: false };

function posture(
  hc: NonNullable<ApiContainerInspect['HostConfig']>,
  extra: Partial<ApiContainerInspect> = {},
) {
  const c: ApiContainerInspect = { Id: 'x', HostConfig: hc, Config: { User: '' }, ...extra };
  const info: ContainerInfo = containerInfo({ security: securityFromInspect(c) });
  return assessPosture(info.security!, info, { engine: ENGINE });
}

describe('posture of odd HostConfig shapes', () => {
  it('a capability both added and dropped is granted, so it is a finding', () => {
    const p = posture({ CapAdd: ['CAP_SYS_ADMIN'], CapDrop: ['CAP_SYS_ADMIN'] });
    expect(p.capabilitiesAdded).toEqual(['SYS_ADMIN']);
    expect(p.failed).toContain('capabilities');
  });

  it('--cap-add ALL with --cap-drop ALL grants everything', () => {
    const p = posture({ CapAdd: ['ALL'], CapDrop: ['ALL'] });
    expect(p.capabilitiesAdded).toEqual(['ALL']);
    expect(p.failed).toContain('capabilities');
  });

  it('--cap-drop ALL with a default capability added back is no finding', () => {
    const p = posture({ CapAdd: ['CAP_NET_RAW'], CapDrop: ['ALL'] });
    expect(p.capabilitiesAdded).toEqual([]);
    expect(p.failed).not.toContain('capabilities');
  });

  it.each([
    ['no-new-privileges', true],
    ['no-new-privileges=true', true],
    ['no-new-privileges:true', true],
    ['no-new-privileges=1', true],
    ['no-new-privileges=T', true],
    ['no-new-privileges=false', false],
    ['no-new-privileges=0', false],
    ['no-new-privileges=False', false],
    ['no-new-privileges:f', false],
  ])('--security-opt %s: no_new_privileges is %s', (opt, on) => {
    const p = posture({ SecurityOpt: [opt] });
    expect(p.noNewPrivileges).toBe(on);
    expect(p.failed.includes('no_new_privileges')).toBe(!on);
  });

  it('a directory holding a sensitive path counts as that path; `/` stays its own entry', () => {
    const mount = (Source: string) => ({
      Mounts: [{ Type: 'bind', Source, Destination: '/host' }],
    });
    expect(posture({}, mount('/var/lib')).sensitiveMounts).toEqual(['/var/lib/docker']);
    expect(posture({}, mount('/var/')).sensitiveMounts).toEqual([
      '/var/run/docker.sock',
      '/var/lib/docker',
    ]);
    expect(posture({}, mount('/')).sensitiveMounts).toEqual(['/']);
    expect(posture({}, mount('/var/lib/dockerish')).sensitiveMounts).toEqual([]);
    expect(posture({}, mount('/srv')).sensitiveMounts).toEqual([]);
    expect(posture({}, mount('/var/li')).sensitiveMounts).toEqual([]);
  });
});
