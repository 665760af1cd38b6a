import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { ApiInfo } from '../../../src/docker/api-types.js';
import { ResourceIdentity, containerService } from '../../../src/docker/identity.js';
import { makeContainerInfo } from '../../support/container-info.js';

const DAEMON: ApiInfo = { Name: 'docker-host-7', ID: 'ABCD:EFGH:1234', OSType: 'linux' };
const ID = 'c0ffee'.repeat(10) + 'c0ff';

function identity(over: Partial<ConstructorParameters<typeof ResourceIdentity>[0]> = {}) {
  return new ResourceIdentity({
    daemonInfo: () => DAEMON,
    fallbackHostName: 'agent-container-id',
    version: '9.9.9',
    ...over,
  });
}

describe('ResourceIdentity: host', () => {
  it("names the host after the daemon's /info Name, not the agent's own hostname", () => {
    expect(identity().host()).toEqual({
      'host.name': 'docker-host-7',
      'host.id': 'ABCD:EFGH:1234',
      'os.type': 'linux',
    });
  });
  it('lets host_name, then a host.name in OTEL_RESOURCE_ATTRIBUTES, override it', () => {
    expect(identity({ hostName: 'edge-1' }).hostName()).toBe('edge-1');
    expect(identity({ resourceAttributes: { 'host.name': 'from-env' } }).hostName()).toBe(
      'from-env',
    );
    expect(
      identity({ hostName: 'edge-1', resourceAttributes: { 'host.name': 'from-env' } }).hostName(),
    ).toBe('edge-1');
  });
  it('falls back to the machine hostname until the daemon has answered', () => {
    const seen: { info?: ApiInfo } = {};
    const id = identity({ daemonInfo: () => seen.info });
    expect(id.hostName()).toBe('agent-container-id');
    expect(id.host()['host.id']).toBeUndefined();
    seen.info = DAEMON;
    expect(id.hostName()).toBe('docker-host-7');
  });
});

describe('ResourceIdentity: containers', () => {
  it('takes service.name/namespace from compose labels, and the rest from the container', () => {
    const c = makeContainerInfo({
      id: ID,
      name: 'shop-web-1',
      image: `registry.example.com:5000/shop/web:2.1@sha256:${'e3'.repeat(32)}`,
      labels: {
        'com.docker.compose.service': 'web',
        'com.docker.compose.project': 'shop',
        team: 'payments',
      },
    });
    expect(identity().container(c, ['team'])).toEqual({
      'host.name': 'docker-host-7',
      'host.id': 'ABCD:EFGH:1234',
      'os.type': 'linux',
      'service.name': 'web',
      'service.namespace': 'shop',
      'service.instance.id': ID,
      'container.id': ID,
      'container.name': 'shop-web-1',
      'container.image.name': 'registry.example.com:5000/shop/web',
      'container.image.tags': ['2.1'],
      'container.image.id': 'sha256:' + 'ab'.repeat(32),
      'container.runtime.name': 'docker',
      'container.label.team': 'payments',
    });
  });
  it('uses the swarm service and stack, else the container name', () => {
    expect(
      containerService(
        { 'com.docker.swarm.service.name': 'mon_agent', 'com.docker.stack.namespace': 'mon' },
        'mon_agent.1.xyz',
      ),
    ).toEqual({ name: 'mon_agent', namespace: 'mon' });
    expect(containerService({ 'com.docker.compose.service': ' ' }, 'plain')).toEqual({
      name: 'plain',
    });
    const r = identity().container(makeContainerInfo({ id: ID, name: 'plain', image: 'busybox' }));
    expect(r['service.name']).toBe('plain');
    expect(r['service.namespace']).toBeUndefined();
    expect(r['container.image.tags']).toEqual(['latest']);
  });
  it('adds OTEL_RESOURCE_ATTRIBUTES (percent-decoded) to every resource; the container wins', () => {
    const { config } = loadConfig({
      env: {
        OTEL_RESOURCE_ATTRIBUTES:
          'deployment.environment=prod,team=a%2Cb,service.name=ignored-for-containers',
        OTEL_SERVICE_NAME: 'hm-edge',
      },
    });
    const id = identity({
      resourceAttributes: config.otlp.resource_attributes,
      serviceName: config.otlp.service_name,
    });
    const r = id.container(makeContainerInfo({ id: ID, name: 'db' }));
    expect(r).toMatchObject({
      'deployment.environment': 'prod',
      team: 'a,b',
      'service.name': 'db',
    });
    expect(id.agent()).toMatchObject({
      'deployment.environment': 'prod',
      team: 'a,b',
      'service.name': 'hm-edge',
      'service.version': '9.9.9',
      'host.name': 'docker-host-7',
    });
  });
  it("names the agent's own telemetry harbormaster without OTEL_SERVICE_NAME", () => {
    expect(identity().agent()['service.name']).toBe('harbormaster');
  });
});
