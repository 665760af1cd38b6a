import { z } from 'zod';
import { CHECK_NAMES, isCheck, parseAllowRule } from '../../collectors/security-posture.js';
import { section } from './core.js';

/** Container security posture (container_security_*, docker_engine_security_*). */
export const securitySection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Serve the security posture of running containers (container_security_*) and of the engine (docker_engine_security_*), from inspect data the agent already has.',
    ),
  allow: z
    .array(
      z
        .string()
        .max(1024)
        .refine(
          (s) => {
            try {
              parseAllowRule(s);
              return true;
            } catch {
              return false;
            }
          },
          {
            message: `expected <check>@name=<glob> or <check>@image=<glob>, with a check from ${CHECK_NAMES.join(', ')} or *`,
          },
        ),
    )
    .default([])
    .describe(
      'Containers that legitimately fail a check: "<check>@name=<glob>" or "<check>@image=<glob>" (glob: * and ?), e.g. "docker_socket@name=portainer". Their findings move to container_security_findings_allowed.',
    ),
  label_allow_checks: z
    .array(
      z.string().refine(isCheck, { message: `expected a check name (${CHECK_NAMES.join(', ')})` }),
    )
    .default([])
    .describe(
      'Checks a container may exempt itself from with the label harbormaster.security.allow=<check>,…; labels only tighten, so by default none (a label alone never hides a finding).',
    ),
  exec_audit: z
    .boolean()
    .default(true)
    .describe(
      'Send a log record (command redacted like log lines, user, privileged, tty, exit code) through the log pipeline when a docker exec starts and ends in a container (needs log shipping on, i.e. an OTLP logs endpoint or the ndjson exporter, and lifecycle.enabled).',
    ),
  engine_interval_seconds: z
    .number()
    .min(10)
    .default(300)
    .describe(
      'How often /version and the default bridge network are read for the engine posture (at least 10); /info comes with every reconnect.',
    ),
});
