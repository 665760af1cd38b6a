import { z } from 'zod';
import { coreShape, dockerSection } from './sections/core.js';
import { metricsSection } from './sections/metrics.js';
import { otlpSection } from './sections/otlp.js';
import { logsSection } from './sections/logs.js';
import { lifecycleSection } from './sections/lifecycle.js';
import { securitySection } from './sections/security.js';
import { statusSection } from './sections/status.js';
import { httpSection, webShape } from './sections/http.js';

/** The one configuration schema: types, validation, defaults and docs. */
export const configSchema = z.strictObject({
  ...coreShape,
  ...webShape,
  http: httpSection,
  docker: dockerSection,
  metrics: metricsSection,
  lifecycle: lifecycleSection,
  logs: logsSection,
  otlp: otlpSection,
  security: securitySection,
  status: statusSection,
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
