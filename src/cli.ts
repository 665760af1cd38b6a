#!/usr/bin/env node
import { stringify } from 'yaml';
import { Agent } from './agent.js';
import { ConfigError, listLeaves, loadConfig, type LoadedConfig } from './config/load.js';
import { runDoctor } from './doctor.js';
import { runStatus } from './status-cli.js';
import { renderConfigReference } from './config/reference.js';
import { createLogger } from './util/logger.js';
import { redactSecrets } from './util/secrets.js';
import { hashPassword } from './server/web-config.js';
import { VERSION } from './version.js';

const USAGE = `Usage: harbormaster [command] [options]

Commands:
  run                     Start the agent (the default command).
  config check FILE       Validate FILE (with the environment and flags) and print the effective configuration.
  config reference        Print the configuration reference (Markdown).
  doctor [--output json]  Check what the agent needs (daemon, socket, cgroups, /proc, logs, state, OTLP, port);
                          exit 0 all ok, 1 warnings, 3 failures.
  status [--url URL] [--output json] [--ca-file FILE]
                          Show a running agent's status: containers, log shipping, OTLP endpoints
                          (default URL from --listen, https when the web config has TLS;
                          credentials as https://USER:PASSWORD@HOST:PORT);
                          exit 3 when the agent cannot be reached.
  hash-password [--cost N] Read a password from stdin (or a prompt) and print its bcrypt hash for
                          basic_auth_users in the web config file (cost 4-31, default 10).
  version                 Print the version.
  help                    Show this help.

Options:
  --config FILE           YAML configuration file (or HARBORMASTER_CONFIG).
  --listen HOST:PORT      HTTP address for /metrics, /healthz, /readyz (or HARBORMASTER_LISTEN).
  --state-dir DIR         Where checkpoints live (or HARBORMASTER_STATE_DIR).
  Every setting has a flag: see "harbormaster config reference".
`;

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string>;
  configFile?: string;
  help: boolean;
}

/** Splits argv into positionals and --key value / --key=value flags (booleans may stand alone). */
export function parseArgs(argv: string[]): ParsedArgs {
  const booleans = new Set(
    listLeaves()
      .filter((l) => l.kind === 'boolean')
      .map((l) => l.flag.slice(2)),
  );
  const out: ParsedArgs = { positional: [], flags: {}, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') {
      out.help = true;
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let key: string;
    let value: string | undefined;
    if (eq > 0) {
      key = a.slice(2, eq);
      value = a.slice(eq + 1);
    } else {
      key = a.slice(2);
      const next = argv[i + 1];
      if (booleans.has(key)) {
        if (next !== undefined && /^(true|false|1|0|yes|no)$/i.test(next)) {
          value = next;
          i++;
        } else value = 'true';
      } else if (next !== undefined && !next.startsWith('--')) {
        value = next;
        i++;
      } else {
        value = '';
      }
    }
    if (key === 'config') out.configFile = value;
    else out.flags[key] = value;
  }
  return out;
}

function load(args: ParsedArgs, file: string | undefined): LoadedConfig {
  return loadConfig({ file, env: process.env, flags: args.flags });
}

async function runAgent(args: ParsedArgs): Promise<number> {
  const file = args.configFile ?? (process.env.HARBORMASTER_CONFIG || undefined);
  const { config } = load(args, file);
  const logger = createLogger(config.log_level);
  let agent: Agent;
  try {
    agent = new Agent(config, logger);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    logger.fatal({ err: (err as Error).message }, `Cannot start: ${(err as Error).message}`);
    return 1;
  }
  let exiting = false;
  let signalled = false;
  let exitCode = 0;
  /**
   * Stops the agent and exits with `code`: 0 after a signal, a component's code after its exit
   * request (kept if a signal comes during that stop). A second signal exits at once.
   */
  const shutdown = (signal: string, code = 0): void => {
    const isSignal = signal.startsWith('SIG');
    if (exiting) {
      if (!isSignal || !signalled) {
        signalled ||= isSignal; // the first signal during a requested stop: the stop goes on
        return;
      }
      logger.warn({ signal }, 'Second signal received; exiting now.');
      process.exit(exitCode || 1);
    }
    exiting = true;
    signalled = isSignal;
    exitCode = code;
    logger.info({ signal, ...(code !== 0 ? { exitCode: code } : {}) }, 'Stopping.');
    const timer = setTimeout(() => {
      logger.error(
        { timeoutSeconds: config.shutdown_timeout_seconds },
        'Stopping took too long; exiting anyway.',
      );
      process.exit(exitCode || 1);
    }, config.shutdown_timeout_seconds * 1000);
    timer.unref();
    agent.stop().then(
      () => {
        logger.info('Stopped.');
        process.exit(exitCode);
      },
      (err: unknown) => {
        logger.error({ err }, 'Stopping failed.');
        process.exit(exitCode || 1);
      },
    );
  };
  agent.onExitRequest((code, reason) => {
    logger.error({ exitCode: code }, `${reason} Exiting with status ${code}.`);
    shutdown('exit-request', code);
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP: re-read and validate the configuration; one reload at a time, a HUP during one is queued
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (exiting) return;
    logger.info({ signal: 'SIGHUP', file }, 'Reloading the configuration.');
    reloading = reloading
      .then(() => agent.reload(() => load(args, file).config))
      .then(
        () => undefined,
        (err: unknown) => logger.error({ err }, 'Reload failed; the running configuration stays.'),
      );
  });
  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, `Cannot start: ${(err as Error).message}`);
    await agent.stop();
    return 1;
  }
  return await new Promise<number>(() => {
    /* runs until a signal stops the process */
  });
}

/** Reads one line from stdin; on a terminal, prompts on stderr without echoing what is typed. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write('Password: ');
    stdin.setRawMode(true);
  }
  stdin.setEncoding('utf8');
  let buf = '';
  try {
    for await (const chunk of stdin) {
      buf += chunk as string;
      if (stdin.isTTY && buf.includes('\u0003')) throw new Error('interrupted');
      const nl = buf.search(/[\r\n]/);
      if (nl >= 0) return buf.slice(0, nl);
    }
    return buf;
  } finally {
    if (stdin.isTTY) {
      stdin.setRawMode(false);
      process.stderr.write('\n');
    }
    stdin.pause();
  }
}

async function runHashPassword(args: ParsedArgs): Promise<number> {
  const raw = args.flags.cost ?? '10';
  const cost = Number(raw);
  for (const k of Object.keys(args.flags))
    if (k !== 'cost') {
      process.stderr.write(`hash-password: unknown flag --${k}; only --cost N is accepted\n`);
      return 2;
    }
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
    process.stderr.write(`hash-password: --cost must be an integer from 4 to 31, got ${raw}\n`);
    return 2;
  }
  const password = await readPassword();
  if (password === '') {
    process.stderr.write('hash-password: the password is empty (nothing was read from stdin)\n');
    return 2;
  }
  process.stdout.write(`${await hashPassword(password, cost)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const [cmd = 'run', sub, arg] = args.positional;
  if (args.help || cmd === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    switch (cmd) {
      case 'run':
        return await runAgent(args);
      case 'doctor':
        return await runDoctor({
          flags: args.flags,
          file: args.configFile ?? (process.env.HARBORMASTER_CONFIG || undefined),
        });
      case 'status':
        return await runStatus({
          flags: args.flags,
          file: args.configFile ?? (process.env.HARBORMASTER_CONFIG || undefined),
        });
      case 'hash-password':
        return await runHashPassword(args);
      case 'version':
        process.stdout.write(`harbormaster ${VERSION}\n`);
        return 0;
      case 'config':
        if (sub === 'check') {
          const file = arg ?? args.configFile;
          if (!file) {
            process.stderr.write('config check needs a FILE: harbormaster config check FILE\n');
            return 2;
          }
          const { config } = load(args, file);
          process.stderr.write(`${file}: configuration is valid. Effective configuration:\n`);
          // Secrets never printed: header values, passwords and tokens are masked.
          process.stdout.write(stringify(redactSecrets(config)));
          return 0;
        }
        if (sub === 'reference') {
          process.stdout.write(renderConfigReference());
          return 0;
        }
        process.stderr.write(
          `unknown config subcommand ${sub ?? '(none)'}: expected check or reference\n`,
        );
        return 2;
      default:
        process.stderr.write(`unknown command ${cmd}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`harbormaster: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
