import { describe, expect, it } from 'vitest';
import { parseDockerHost } from '../../../src/docker/client.js';
import { containerCgroupPath, expandSlice } from '../../../src/docker/cgroup-path.js';
import { eventLabels } from '../../../src/docker/events.js';

describe('parseDockerHost', () => {
  it('defaults to the standard unix socket', () => {
    expect(parseDockerHost({ host: '' })).toEqual({
      url: 'unix:///var/run/docker.sock',
      socketPath: '/var/run/docker.sock',
    });
  });
  it('parses tcp:// with the default ports', () => {
    expect(parseDockerHost({ host: 'tcp://127.0.0.1' })).toMatchObject({
      host: '127.0.0.1',
      port: 2375,
    });
    expect(parseDockerHost({ host: 'tcp://[::1]:1234' })).toMatchObject({
      host: '::1',
      port: 1234,
    });
  });
  it('rejects unsupported schemes with a message naming the value', () => {
    expect(() => parseDockerHost({ host: 'ssh://box' })).toThrow(/ssh:\/\/box is not supported/);
    expect(() => parseDockerHost({ host: 'unix://relative.sock' })).toThrow(/absolute/);
  });
  it('fails fast when TLS verification is asked for without certificates', () => {
    expect(() =>
      parseDockerHost({ host: 'tcp://127.0.0.1:2376', tlsVerify: true, certPath: '/nonexistent' }),
    ).toThrow(/cannot read \/nonexistent\/ca.pem/);
  });
});

describe('containerCgroupPath', () => {
  const id = 'a'.repeat(64);
  it('uses /docker/<id> for the cgroupfs driver', () => {
    expect(containerCgroupPath(id, 'cgroupfs')).toBe(`/docker/${id}`);
    expect(containerCgroupPath(id, 'cgroupfs', '/custom/')).toBe(`/custom/${id}`);
  });
  it('uses a docker-<id>.scope under the slice for the systemd driver', () => {
    expect(containerCgroupPath(id, 'systemd')).toBe(`/system.slice/docker-${id}.scope`);
    expect(containerCgroupPath(id, 'systemd', 'my-app.slice')).toBe(
      `/my.slice/my-app.slice/docker-${id}.scope`,
    );
  });
  it('expands nested slices as systemd does', () => {
    expect(expandSlice('a-b-c.slice')).toBe('/a.slice/a-b.slice/a-b-c.slice');
    expect(expandSlice('-.slice')).toBe('');
  });
});

describe('eventLabels', () => {
  it('keeps known actions and folds details and unknowns', () => {
    expect(eventLabels('container', 'health_status: healthy')).toEqual({
      type: 'container',
      action: 'health_status',
    });
    expect(eventLabels('container', 'exec_start: sh -c ls')).toEqual({
      type: 'container',
      action: 'exec_start',
    });
    expect(eventLabels('container', 'brand_new')).toEqual({ type: 'container', action: 'other' });
    expect(eventLabels('spaceship', 'launch')).toEqual({ type: 'other', action: 'other' });
  });
});
