import { z } from 'zod';
import { section } from './core.js';

const url = z
  .string()
  .refine(
    (s) => s === '' || /^https?:\/\/[^\s]+$/.test(s),
    'expected an http:// or https:// URL, or empty',
  )
  .default('');

const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
const COMPRESSIONS = ['gzip', 'none'] as const;

/** Keys a signal (logs, traces) may set for itself; unset means the generic key applies. */
function signalKeys<S extends 'logs' | 'traces'>(signal: S) {
  const V = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}`;
  return {
    [`${signal}_protocol`]: z
      .enum(PROTOCOLS)
      .optional()
      .describe(`OTLP wire format for ${signal} (${V}_PROTOCOL); unset: protocol.`),
    [`${signal}_headers`]: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        `Headers (gRPC metadata) for ${signal}, added to headers and winning over a generic header of the same name (${V}_HEADERS).`,
      ),
    [`${signal}_headers_file`]: z
      .string()
      .default('')
      .describe(
        `File with ${signal} headers in the k1=v1,k2=v2 form (e.g. a Docker secret), added like ${signal}_headers.`,
      ),
    [`${signal}_compression`]: z
      .enum(COMPRESSIONS)
      .optional()
      .describe(`Compression for ${signal} (${V}_COMPRESSION); unset: compression.`),
    [`${signal}_timeout_seconds`]: z
      .number()
      .positive()
      .optional()
      .describe(
        `Timeout of one ${signal} export (${V}_TIMEOUT is in milliseconds); unset: timeout_seconds.`,
      ),
    [`${signal}_certificate`]: z
      .string()
      .default('')
      .describe(`CA certificate file (PEM) trusted for ${signal}; empty: certificate.`),
    [`${signal}_client_key`]: z
      .string()
      .default('')
      .describe(`Client private key file (PEM, mTLS) for ${signal}; empty: client_key.`),
    [`${signal}_client_certificate`]: z
      .string()
      .default('')
      .describe(
        `Client certificate chain file (PEM, mTLS) for ${signal}; empty: client_certificate.`,
      ),
  } as {
    [K in `${S}_protocol`]: z.ZodOptional<z.ZodEnum<{ [P in (typeof PROTOCOLS)[number]]: P }>>;
  } & { [K in `${S}_headers`]: z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodString>> } & {
    [K in `${S}_compression`]: z.ZodOptional<
      z.ZodEnum<{ [P in (typeof COMPRESSIONS)[number]]: P }>
    >;
  } & { [K in `${S}_timeout_seconds`]: z.ZodOptional<z.ZodNumber> } & {
    [
      K in `${S}_headers_file` | `${S}_certificate` | `${S}_client_key` | `${S}_client_certificate`
    ]: z.ZodDefault<z.ZodString>;
  };
}

/**
 * OTLP export (logs and traces). The standard OTEL_* variables map onto these keys, generic and
 * per signal; src/exporters/otlp-env.ts resolves them per signal as the OpenTelemetry
 * specification says (the signal's own setting wins over the generic one).
 */
export const otlpSection = section({
  endpoint: url.describe(
    'Base OTLP endpoint (e.g. http://collector:4318, or http://collector:4317 with grpc); for HTTP /v1/logs and /v1/traces are appended. Empty disables OTLP export unless a signal endpoint is set.',
  ),
  logs_endpoint: url.describe(
    'Full URL for logs, overriding endpoint (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT).',
  ),
  traces_endpoint: url.describe(
    'Full URL for traces, overriding endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).',
  ),
  protocol: z.enum(PROTOCOLS).default('http/protobuf').describe('OTLP wire format.'),
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe('Extra HTTP headers (gRPC metadata), e.g. authorization (env form: k1=v1,k2=v2).'),
  headers_file: z
    .string()
    .default('')
    .describe(
      'File with headers in the k1=v1,k2=v2 form (commas or newlines), e.g. a Docker secret; its headers are added to headers.',
    ),
  compression: z.enum(COMPRESSIONS).default('gzip').describe('Request body compression.'),
  timeout_seconds: z.number().positive().default(10).describe('Timeout of one export request.'),
  certificate: z
    .string()
    .default('')
    .describe('CA certificate file (PEM) trusted for https:// endpoints, e.g. a private CA.'),
  client_key: z
    .string()
    .default('')
    .describe('Client private key file (PEM) for mTLS; needs client_certificate.'),
  client_certificate: z
    .string()
    .default('')
    .describe('Client certificate chain file (PEM) for mTLS; needs client_key.'),
  ...signalKeys('logs'),
  ...signalKeys('traces'),
  resource_attributes: z
    .record(z.string(), z.string())
    .default({})
    .describe(
      'Attributes added to every log and span resource (env form: k1=v1,k2=v2, values percent-encoded).',
    ),
  service_name: z
    .string()
    .default('')
    .describe("service.name of the agent's own telemetry; empty: harbormaster."),
  sdk_disabled: z
    .boolean()
    .default(false)
    .describe('Switch off all OTLP export (logs and traces).'),
  logs_exporter: z
    .enum(['otlp', 'none'])
    .default('otlp')
    .describe('none switches off OTLP export of logs.'),
  traces_exporter: z
    .enum(['otlp', 'none'])
    .default('otlp')
    .describe('none switches off OTLP export of traces.'),
});
