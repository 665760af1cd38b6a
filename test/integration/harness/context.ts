// Values the integration globalSetup hands to test files (vitest provide/inject) and, as
// environment variables, to child processes.

/** The engine the integration tests use, or why there is none. */
export type DockerInfo =
  | {
      available: true;
      /** `unix:///…` socket of the engine. */
      host: string;
      /** 'private': a dockerd the harness started; 'external': HARBORMASTER_TEST_DOCKER_HOST. */
      kind: 'private' | 'external';
      /** The test image tag, already present on the engine. */
      image: string;
      /** Storage driver of the private dockerd ('' for an external engine). */
      storageDriver: string;
      /** Data root of the private dockerd ('' for an external engine). */
      dataRoot: string;
    }
  | { available: false; reason: string };

export interface HarnessInfo {
  /**
   * The engine of this test file. With perFileEngine, every test file starts a private dockerd
   * of its own when it imports the harness (harness/index.ts) and this is that engine; files
   * running at the same time, or one after the other, never share one.
   */
  docker: DockerInfo;
  /**
   * True when each test file gets a private dockerd of its own (root, dockerd installed, no
   * HARBORMASTER_TEST_DOCKER_HOST): the globalSetup then starts none, and `docker` above comes
   * from the file's own engine.
   */
  perFileEngine?: boolean;
  /** Tests may start further private dockerds of their own (root and dockerd present). */
  canStartPrivateDockerd: boolean;
  /** Absolute path of the built agent CLI (dist/src/cli.js). */
  agentCli: string;
  /** Absolute path of the repository root. */
  repoRoot: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    harbormaster: HarnessInfo;
  }
}

/** Environment variable names set by the globalSetup (inherited by workers and their children). */
export const ENV = {
  /** Docker host the tests use (also the user's way to choose an engine). */
  dockerHost: 'HARBORMASTER_TEST_DOCKER_HOST',
  /** 'private' | 'external' */
  dockerKind: 'HARBORMASTER_TEST_DOCKER_KIND',
  /** Set (to the reason) when there is no engine and tests skip. */
  dockerUnavailable: 'HARBORMASTER_TEST_DOCKER_UNAVAILABLE',
  agentCli: 'HARBORMASTER_TEST_AGENT_CLI',
  /** Set to 1 to never start private dockerds (engine only from dockerHost, else skip). */
  noPrivateDockerd: 'HARBORMASTER_TEST_NO_PRIVATE_DOCKERD',
  /** Set to 1 to skip `npm run build` in the globalSetup. */
  skipBuild: 'HARBORMASTER_TEST_SKIP_BUILD',
  /** overlay2 or vfs: probed once by the globalSetup, used by every private dockerd. */
  storageDriver: 'HARBORMASTER_TEST_STORAGE_DRIVER',
} as const;
