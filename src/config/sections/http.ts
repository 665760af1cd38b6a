import { z } from 'zod';
import { durationSeconds, section } from './core.js';

/** Paths that may be served without basic auth (probes); everything else is always covered. */
export const PROBE_PATHS = ['/healthz', '/readyz'] as const;

/** Top-level key of the outside contract: `--web-config-file`, `HARBORMASTER_WEB_CONFIG_FILE`. */
export const webShape = {
  web_config_file: z
    .string()
    .default('')
    .describe(
      'Web configuration in the Prometheus exporter-toolkit format (tls_server_config, basic_auth_users, http_server_config); empty serves plain HTTP without authentication. Re-read on SIGHUP; certificates are re-read when they change on disk.',
    ),
};

/** The HTTP server: what it serves and the bounds that keep clients from exhausting the agent. */
export const httpSection = section({
  unauthenticated_paths: z
    .array(z.enum(PROBE_PATHS))
    .default(['/healthz'])
    .describe(
      'Probe paths served without basic auth when basic_auth_users is set (a required client certificate still applies: it is checked in the TLS handshake).',
    ),
  containers_endpoint: z
    .boolean()
    .default(true)
    .describe(
      'Serve GET /containers (the inventory, with only the labels in metrics.label_allowlist); false answers 404.',
    ),
  idle_timeout_seconds: durationSeconds(
    30,
    'A connection that sends nothing for this long is closed: before its first request, between keep-alive requests, or during a stalled TLS handshake (at least 1).',
    1,
  ),
  header_timeout_seconds: durationSeconds(
    10,
    'Time a client has to send the complete request headers once it has started (at least 1).',
    1,
  ),
  request_timeout_seconds: durationSeconds(
    30,
    'Time a client has to send a complete request (at least header_timeout_seconds).',
    1,
  ),
  max_connections: z
    .number()
    .int()
    .min(1)
    .default(128)
    .describe(
      'Most client connections open at once; at the cap, the connection idle the longest is closed to make room, or the new one is refused when none is idle.',
    ),
  reserved_descriptors: z
    .number()
    .int()
    .min(0)
    .default(256)
    .describe(
      "File descriptors kept free for the agent's own work (log files, cgroup files, exports): client connections are capped at the open-files limit minus this, whatever max_connections says.",
    ),
});
