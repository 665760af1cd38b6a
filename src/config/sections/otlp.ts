import { z } from 'zod';
import { section } from './core.js';

const url = z
  .string()
  .refine(
    (s) => s === '' || /^https?:\/\/[^\s]+$/.test(s),
    'expected an http:// or https:// URL, or empty',
  )
  .default('');

/** OTLP export (logs and traces). The standard OTEL_EXPORTER_OTLP_* variables map onto these keys. */
export const otlpSection = section({
  endpoint: url.describe(
    'Base OTLP/HTTP endpoint (e.g. http://collector:4318); /v1/logs and /v1/traces are appended. Empty disables OTLP export unless a signal endpoint is set.',
  ),
  logs_endpoint: url.describe(
    'Full URL for logs, overriding endpoint (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT).',
  ),
  traces_endpoint: url.describe(
    'Full URL for traces, overriding endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).',
  ),
  protocol: z
    .enum(['http/protobuf', 'http/json'])
    .default('http/protobuf')
    .describe('OTLP wire format.'),
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe('Extra HTTP headers, e.g. authorization (env form: k1=v1,k2=v2).'),
  compression: z.enum(['gzip', 'none']).default('gzip').describe('Request body compression.'),
  timeout_seconds: z.number().positive().default(10).describe('Timeout of one export request.'),
});
