/** The parts of Engine API responses the agent reads. Everything is optional: daemons differ. */

export interface ApiContainerSummary {
  Id: string;
  Names?: string[];
  State?: string;
}

export interface ApiContainerInspect {
  Id: string;
  Name?: string;
  Created?: string;
  Image?: string;
  RestartCount?: number;
  LogPath?: string;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    OOMKilled?: boolean;
    Dead?: boolean;
    Pid?: number;
    ExitCode?: number;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status?: string; FailingStreak?: number };
  };
  Config?: {
    Image?: string;
    Labels?: Record<string, string> | null;
    User?: string;
    /** `["CMD-SHELL", "curl -f …"]`, `["CMD", "bin", "arg"]` or `["NONE"]`. */
    Healthcheck?: { Test?: string[] | null } | null;
    /** SHELL of the image (used for CMD-SHELL health checks), default `["/bin/sh", "-c"]`. */
    Shell?: string[] | null;
  };
  /** Mounts as the daemon resolved them (binds, volumes, tmpfs). */
  Mounts?: Array<{
    Type?: string;
    Source?: string;
    Destination?: string;
    RW?: boolean;
  }> | null;
  HostConfig?: {
    Privileged?: boolean;
    UsernsMode?: string;
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
    SecurityOpt?: string[] | null;
    ReadonlyRootfs?: boolean;
    PidMode?: string;
    IpcMode?: string;
    UTSMode?: string;
    CgroupnsMode?: string;
    NetworkMode?: string;
    CgroupParent?: string;
    LogConfig?: { Type?: string; Config?: Record<string, string> };
    CpuShares?: number;
    CpuPeriod?: number;
    CpuQuota?: number;
    NanoCpus?: number;
    Memory?: number;
    MemorySwap?: number;
    MemoryReservation?: number;
    PidsLimit?: number | null;
  };
}

export interface ApiInfo {
  ID?: string;
  Name?: string;
  ServerVersion?: string;
  Driver?: string;
  CgroupDriver?: string;
  CgroupVersion?: string;
  DockerRootDir?: string;
  OperatingSystem?: string;
  OSType?: string;
  KernelVersion?: string;
  NCPU?: number;
  MemTotal?: number;
  Containers?: number;
  ContainersRunning?: number;
  ContainersPaused?: number;
  ContainersStopped?: number;
  Images?: number;
  /** e.g. `name=seccomp,profile=builtin`, `name=userns`, `name=rootless`, `name=apparmor`. */
  SecurityOptions?: string[] | null;
  LiveRestoreEnabled?: boolean;
  /** The daemon's clock when it answered, RFC 3339 with nanoseconds. */
  SystemTime?: string;
}
