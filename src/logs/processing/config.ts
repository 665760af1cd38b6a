// The logs.processing config section: multiline grouping, body parsing, per-container controls
// and redaction. Per-container labels (harbormaster.logs.*) override these, but never above a
// limit set here (they are clamped); see processor.ts.
import { z } from 'zod';
import { section } from '../../config/sections/core.js';
import { PARSER_MODES } from './body.js';
import { MULTILINE_PRESETS } from './multiline.js';
import { MAX_PATTERN_LENGTH, checkPattern } from '../../util/pattern.js';

/** Rejects a pattern the linear-time engine cannot take, with the engine's reason. */
const patternCheck =
  (opts: { caseInsensitive?: boolean } = {}) =>
  (s: string, ctx: z.RefinementCtx): void => {
    if (s === '') return;
    const r = checkPattern(s, opts);
    if (!r.ok)
      ctx.addIssue({
        code: 'custom',
        message: `${r.error.message} (patterns use RE2 syntax and run in linear time)`,
      });
  };

const regexString = (what: string) =>
  z.string().max(MAX_PATTERN_LENGTH).superRefine(patternCheck()).default('').describe(what);

export const multilineSection = section({
  presets: z
    .array(z.enum(MULTILINE_PRESETS))
    .default([])
    .describe(
      'Stack-trace presets applied to every container: java ("at …" frames, "Caused by:", "... N more"), python ("Traceback (most recent call last):" up to the exception line), go ("panic:" / "goroutine N [running]:" blocks). Label harbormaster.logs.multiline.preset (comma-separated, or "none").',
    ),
  start_pattern: regexString(
    'A line matching this regex starts a new record; following lines that do not match are joined to it (presets are then ignored). Empty: off. Label harbormaster.logs.multiline.pattern.',
  ),
  max_lines: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(500)
    .describe(
      'Most lines joined into one record; a longer group is shipped in pieces. Label harbormaster.logs.multiline.max_lines.',
    ),
  max_bytes: z
    .number()
    .int()
    .min(1024)
    .default(256 * 1024)
    .describe(
      'Most bytes joined into one record (bounds memory per container and stream); a larger group is shipped in pieces. Label harbormaster.logs.multiline.max_bytes.',
    ),
  flush_seconds: z
    .number()
    .positive()
    .default(1)
    .describe(
      'A group with no new line for this long is shipped (the latency multiline grouping adds to the last line of a burst). Label harbormaster.logs.multiline.flush_seconds.',
    ),
});

export const redactionSection = section({
  enabled: z
    .boolean()
    .default(true)
    .describe('Mask secrets in log bodies and string attributes before export.'),
  default_patterns: z
    .boolean()
    .default(true)
    .describe(
      'Use the built-in patterns: bearer tokens ("Bearer <token>"), Basic authorization headers, passwords in URLs (scheme://user:<password>@host), password= / passwd= / secret= / token= / api_key= pairs and JSON "password": "…" fields.',
    ),
  patterns: z
    .array(z.string().min(1).max(MAX_PATTERN_LENGTH).superRefine(patternCheck()))
    .default([])
    .describe(
      'Extra patterns (RE2 syntax, linear time; "(?i)" prefix for case-insensitive). The whole match is masked, or only the capture groups when the pattern has any; keep context with a lookbehind or a group, e.g. "(?<=ssn=)\\\\d+" or "ssn=(\\\\d+)". Lookaheads and backreferences are rejected.',
    ),
  mask: z.string().max(64).default('***').describe('Text that replaces each masked secret.'),
  secret_keys: z
    .string()
    .default('(^|[._-])(password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|cookie)$')
    .superRefine(patternCheck({ caseInsensitive: true }))
    .describe(
      'Parsed attributes whose key matches this regex (case-insensitive) have their whole value masked. Empty: off.',
    ),
});

/** logs.processing */
export const processingSection = section({
  default_enabled: z
    .boolean()
    .default(true)
    .describe(
      'Ship logs of containers without a harbormaster.logs.enabled label. false: only containers labelled harbormaster.logs.enabled=true are shipped.',
    ),
  parser: z
    .enum(PARSER_MODES)
    .default('auto')
    .describe(
      'How log bodies are parsed: json (objects), logfmt, none, or auto (JSON objects, and lines made only of two or more key=value pairs). Severity, message, trace_id/span_id/traceparent are lifted; other fields become attributes; a line that does not parse ships unchanged. Label harbormaster.logs.parser.',
    ),
  parser_max_depth: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(4)
    .describe(
      'Nesting levels of a JSON body flattened into dotted attribute keys (a.b.c); deeper objects and all arrays become one JSON-text attribute.',
    ),
  parser_max_attributes: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(64)
    .describe(
      'Most attributes taken from one parsed line; the rest are dropped and counted (OTLP dropped_attributes_count).',
    ),
  parser_max_value_bytes: z
    .number()
    .int()
    .min(16)
    .default(4096)
    .describe(
      'Longest attribute value from a parsed line (UTF-8 bytes); longer values are cut and counted. Keys are cut at 256 bytes.',
    ),
  drop_pattern: regexString(
    'Records (after multiline grouping) matching this regex are dropped and counted (reason filter_drop). Label harbormaster.logs.drop adds a per-container pattern.',
  ),
  keep_pattern: regexString(
    'When set, only records matching this regex are shipped; the others are dropped and counted (reason filter_keep). Label harbormaster.logs.keep (replaces this for the container).',
  ),
  rate_limit_lines_per_second: z
    .number()
    .min(0)
    .default(0)
    .describe(
      'Per-container rate limit (token bucket, records per second); records over it are dropped and counted (reason rate_limited). 0: off. Label harbormaster.logs.rate_limit.',
    ),
  rate_limit_burst_lines: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      'Bucket size of the rate limit: records allowed at once after a quiet period. 0: one second worth (= rate_limit_lines_per_second). Label harbormaster.logs.rate_burst.',
    ),
  record_budget_seconds: z
    .number()
    .positive()
    .max(60)
    .default(0.05)
    .describe(
      'Time budget for processing one record (multiline, filters, parsing, redaction). Patterns run in linear time, so only long records with costly patterns come near it; lines whose bytes show that no stage changes them (default settings, plain text without a secret-like word) are passed without being decoded or timed. A record over it is counted (harbormaster_log_processing_events_total{event="over_budget"}) and logged once per container.',
    ),
  multiline: multilineSection,
  redaction: redactionSection,
});

export type ProcessingConfig = z.output<typeof processingSection>;

/** The config with every default (for tests and callers without a loaded config). */
export function defaultProcessingConfig(): ProcessingConfig {
  return processingSection.parse(undefined);
}
