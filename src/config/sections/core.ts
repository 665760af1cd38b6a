import { z } from 'zod';

/** A nested config section: strict (unknown keys are errors), inner defaults applied when absent. */
export function section<T extends z.ZodRawShape>(shape: T) {
  const obj = z.strictObject(shape);
  return obj.prefault({} as z.input<typeof obj>);
}

export const durationSeconds = (def: number, what: string, min = 0) =>
  z.number().min(min).default(def).describe(what);

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Top-level settings that are part of the outside contract. */
export const coreShape = {
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:9105')
    .refine(
      (s) => !/:\d{1,5}$/.test(s) || Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535,
      'expected a port from 0 to 65535',
    )
    .default('0.0.0.0:9105')
    .describe('HTTP address (host:port) serving /metrics, /healthz and /readyz.'),
  state_dir: z
    .string()
    .min(1)
    .default('/var/lib/harbormaster')
    .describe('Directory for checkpoints and other state; must be writable.'),
  log_level: z
    .enum(logLevels)
    .default('info')
    .describe("The agent's own log level (JSON on stderr)."),
  host_name: z
    .string()
    .default('')
    .describe(
      "host.name reported on logs and traces; empty means the Docker daemon's name (docker info), else the machine hostname.",
    ),
  cgroup_root: z
    .string()
    .min(1)
    .default('/sys/fs/cgroup')
    .describe(
      "Where the host's cgroup filesystem is mounted (e.g. /host/sys/fs/cgroup in a container).",
    ),
  proc_root: z
    .string()
    .min(1)
    .default('/proc')
    .describe("Where the host's /proc is mounted (e.g. /host/proc in a container)."),
  docker_root: z
    .string()
    .min(1)
    .default('/var/lib/docker')
    .describe(
      "Docker's data root as seen by the agent; log paths the daemon reports are mapped under it.",
    ),
  shutdown_timeout_seconds: durationSeconds(
    8,
    'How long stopping may take before the agent exits anyway (at least 1).',
    1,
  ),
};

export const dockerSection = section({
  host: z
    .string()
    .refine(
      (s) => s === '' || /^unix:\/\/\/\S+$/.test(s) || /^(tcp|http|https):\/\/[^\s/]+\/?$/.test(s),
      'expected unix:///absolute/path or tcp://host:port',
    )
    .default('')
    .describe(
      'Daemon address (unix:///path or tcp://host:port); empty means DOCKER_HOST or unix:///var/run/docker.sock.',
    ),
  log_source: z
    .enum(['auto', 'file', 'api'])
    .default('auto')
    .describe(
      'How json-file container logs are read: file tails them under docker_root (also with a tcp:// daemon that is really local, e.g. behind a socket proxy); api streams them through the Engine API; auto reads files when the daemon is a unix socket, else the API. Other log drivers always use the API.',
    ),
  api_version: z
    .string()
    .regex(/^(\d+\.\d+)?$/, 'expected an API version like 1.41, or empty to negotiate')
    .default('')
    .describe('Engine API version to use; empty negotiates it from /_ping.'),
  tls_verify: z.boolean().default(false).describe('Use TLS for tcp:// (also DOCKER_TLS_VERIFY=1).'),
  cert_path: z
    .string()
    .default('')
    .describe('Directory with ca.pem, cert.pem, key.pem for TLS (also DOCKER_CERT_PATH).'),
  request_timeout_seconds: durationSeconds(
    30,
    'Timeout of one Engine API request (not the event stream); at least 1.',
    1,
  ),
  reconnect_max_backoff_seconds: durationSeconds(
    10,
    'Upper bound of the reconnect backoff after the daemon is lost; it starts at 0.25 s and resets on success (at least 0.25). A unix socket that appears again (dockerd restarted) ends the wait at once.',
    0.25,
  ),
  removed_grace_seconds: durationSeconds(
    60,
    'How long a removed container stays resolvable (for late readers such as log tailers).',
  ),
  heartbeat_seconds: durationSeconds(
    15,
    'While the event stream is idle for this long, the daemon is asked /_ping; no answer within heartbeat_timeout_seconds and the stream is dropped and reconnected (a tcp:// daemon that vanishes silently is noticed). 0: off.',
  ),
  heartbeat_timeout_seconds: durationSeconds(
    5,
    'How long the /_ping heartbeat waits for the daemon (at least 0.1).',
    0.1,
  ),
});
