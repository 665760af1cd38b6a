// One ContainerInfo factory for unit tests and benchmarks: a running container with no limits;
// callers override what their case is about.
import { containerCgroupPath } from '../../src/docker/cgroup-path.js';
import type { ContainerInfo } from '../../src/docker/types.js';

export const NO_LIMITS: ContainerInfo['spec'] = {
  cpuShares: 0,
  cpuPeriod: 0,
  cpuQuota: 0,
  nanoCpus: 0,
  memoryLimit: 0,
  memorySwap: 0,
  memoryReservation: 0,
  pidsLimit: 0,
};

/** A container as the inventory would report it; the cgroup path follows `driver` and `id`. */
export function makeContainerInfo(
  over: Partial<ContainerInfo> & { id: string; driver?: string },
): ContainerInfo {
  const { driver = 'cgroupfs', ...rest } = over;
  const path = containerCgroupPath(rest.id, driver);
  return {
    name: 'web',
    image: 'busybox:1.36',
    imageId: 'sha256:' + 'ab'.repeat(32),
    labels: {},
    state: 'running',
    pid: 1,
    createdAt: 1_700_000_000_000,
    startedAt: 1_700_000_001_000,
    finishedAt: 0,
    restartCount: 0,
    exitCode: 0,
    oomKilled: false,
    health: 'none',
    healthFailingStreak: 0,
    networkMode: 'bridge',
    logDriver: 'json-file',
    logPath: '',
    cgroup: { v1: path, v2: path },
    spec: NO_LIMITS,
    ...rest,
  };
}
