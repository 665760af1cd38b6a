/** Container states as the Engine API reports them. */
export const CONTAINER_STATES = [
  'created',
  'running',
  'paused',
  'restarting',
  'removing',
  'exited',
  'dead',
] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

export const HEALTH_STATES = ['none', 'starting', 'healthy', 'unhealthy'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

/** Cgroup locations of one container, relative to the cgroup mount (always start with '/'). */
export interface CgroupPaths {
  /** Path inside each v1 controller hierarchy, e.g. `/docker/<id>` or `/system.slice/docker-<id>.scope`. */
  v1: string;
  /** Path inside the unified (v2) hierarchy. Same shapes as v1 for Docker. */
  v2: string;
}

/**
 * One container as the inventory knows it: the single source of container identity.
 * Entries are immutable snapshots; every change produces a new object.
 */
export interface ContainerInfo {
  readonly id: string;
  /** Name without the leading slash. */
  readonly name: string;
  /** Image reference as the container was created with (`Config.Image`), e.g. `busybox:latest`. */
  readonly image: string;
  /** Image id (`sha256:...`). */
  readonly imageId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: ContainerState;
  /** Host pid of the container's init process, 0 when not running. */
  readonly pid: number;
  /** Creation time in ms since the epoch. */
  readonly createdAt: number;
  /** Start of the current/last run in ms since the epoch; 0 when never started. */
  readonly startedAt: number;
  /** End of the last run in ms since the epoch; 0 when it has not finished yet. */
  readonly finishedAt: number;
  /** The daemon's `RestartCount` (restarts by restart policy since the last manual start). */
  readonly restartCount: number;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  readonly health: HealthState;
  readonly healthFailingStreak: number;
  /** `HostConfig.NetworkMode`: `none`, `host`, `bridge`, `container:<id>`, a network name... */
  readonly networkMode: string;
  readonly logDriver: string;
  /** json-file log path on the host ('' when the driver keeps no file). */
  readonly logPath: string;
  readonly cgroup: CgroupPaths;
  /** Resource limits as configured (HostConfig), for spec metrics. 0 means unset. */
  readonly spec: ContainerSpec;
  /**
   * Security-relevant settings from inspect (HostConfig, Config.User, Mounts), for the posture
   * metrics of collectors/security.ts. Undefined when not known (e.g. a hand-made entry).
   */
  readonly security?: ContainerSecurity;
}

/** A bind mount of a host path into a container. */
export interface BindMount {
  /** Host path (`Mounts[].Source`). */
  readonly source: string;
  /** Path inside the container. */
  readonly destination: string;
  readonly readOnly: boolean;
}

/** Security settings of a container as configured (what `docker run` flags set). */
export interface ContainerSecurity {
  /** `--privileged`. */
  readonly privileged: boolean;
  /** `Config.User` as given (`''`, `root`, `0`, `1000:1000`, `app`...). */
  readonly user: string;
  /** `HostConfig.UsernsMode` (`''`, or `host` to opt out of the daemon's user-namespace remapping). */
  readonly usernsMode: string;
  /** `--cap-add` values, upper case, without the `CAP_` prefix (`NET_ADMIN`, `ALL`). */
  readonly capAdd: readonly string[];
  /** `--cap-drop` values, normalized like capAdd. */
  readonly capDrop: readonly string[];
  /** `--security-opt` entries as given (`seccomp=unconfined`, `no-new-privileges`...). */
  readonly securityOpt: readonly string[];
  /** `--read-only`. */
  readonly readOnlyRootfs: boolean;
  /** `HostConfig.PidMode`, `IpcMode`, `UTSMode`, `CgroupnsMode` (`host` shares the host's). */
  readonly pidMode: string;
  readonly ipcMode: string;
  readonly utsMode: string;
  readonly cgroupnsMode: string;
  /** Bind mounts (volumes and tmpfs are left out: they are not host paths). */
  readonly binds: readonly BindMount[];
  /**
   * The health check command as the daemon's exec events show it (`/bin/sh -c curl -f …`), ''
   * without one: its probes run as execs and are not someone running `docker exec`.
   */
  readonly healthCheckCommand?: string;
}

export interface ContainerSpec {
  readonly cpuShares: number;
  readonly cpuPeriod: number;
  readonly cpuQuota: number;
  readonly nanoCpus: number;
  readonly memoryLimit: number;
  readonly memorySwap: number;
  readonly memoryReservation: number;
  readonly pidsLimit: number;
}

export type InventoryEvent =
  | { type: 'added'; container: ContainerInfo }
  | { type: 'updated'; container: ContainerInfo; previous: ContainerInfo }
  | { type: 'removed'; container: ContainerInfo };

/** A raw event from the daemon's `/events` stream (fields we use). */
export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time: number;
  timeNano: number;
  scope?: string;
}

export type InventoryListener = (event: InventoryEvent) => void;

/** Read side of the inventory, as the rest of the agent sees it. */
export interface ContainerSource {
  /** Containers currently known (not including removed ones in their grace period). */
  list(): ContainerInfo[];
  /** Resolves an id, including recently removed containers within the grace period. */
  get(id: string): ContainerInfo | undefined;
  /** Subscribe to changes. Returns an unsubscribe function. */
  subscribe(listener: InventoryListener): () => void;
  /**
   * Subscribe to every raw daemon event (after the inventory has applied it). `replayed`: the
   * event happened before the subscription it came on (Docker's `since` replay after the
   * agent's start or a lost stream), so the re-list the inventory made meanwhile already
   * describes its effect; a listener that keeps per-run state from events should skip it.
   */
  onDockerEvent(listener: (event: DockerEvent, replayed: boolean) => void): () => void;
  /** True when the inventory is synced with the daemon. */
  ready(): boolean;
}
