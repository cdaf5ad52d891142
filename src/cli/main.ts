#!/usr/bin/env node
/**
 * @module cli/main
 * The `wharf` command line: the composition root. Only this layer reads
 * process.env and argv, exits the process or opens a listening socket.
 */
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadConfig, logLevels } from './config.js';
import { startServer } from './start-server.js';

const program = new Command('wharf')
  .description('A caching pull-through OCI registry mirror')
  .option('--debug', 'print the cause chain of errors')
  .showHelpAfterError();

/** The options every command that works on a store takes. */
function storeOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'YAML config file (env WHARF_CONFIG)')
    .option('-d, --data <dir>', 'data directory (env WHARF_DATA, default ./data)');
}

storeOptions(program.command('serve').description('serve the registry API'))
  .option('-l, --listen <addr>', 'host:port to listen on (env WHARF_LISTEN, default :5000)')
  .addOption(new Option('--log-level <level>', 'log level (env WHARF_LOG_LEVEL, default info)').choices(logLevels))
  .action(async (flags: { config?: string; data?: string; listen?: string; logLevel?: string }) => {
    const config = loadConfig({
      file: flags.config ?? process.env.WHARF_CONFIG,
      env: process.env,
      flags: { data: flags.data, listen: flags.listen, logLevel: flags.logLevel },
    });
    const logger = pino({ level: config.logLevel });
    const server = await startServer({
      dataDir: config.dataDir,
      host: config.listen.host,
      port: config.listen.port,
      logLevel: config.logLevel,
      logger,
      uploadMaxAgeMs: config.uploadMaxAgeMs,
      shutdownGraceMs: config.shutdownGraceMs,
    });
    const shown = server.host.includes(':') ? `[${server.host}]` : server.host;
    logger.info({ listen: `${shown}:${server.port}`, data: config.dataDir }, 'wharf is serving');
    process.stdout.write(`wharf listening on http://${shown}:${server.port}, data in ${config.dataDir}\n`);
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down: finishing requests in flight');
      server.close().then(
        () => process.exit(0),
        (error: unknown) => fail(error),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

/** One plain line, `error: CODE: message`, and exit 1; --debug adds the cause chain. */
function fail(error: unknown): never {
  const debug = program.opts<{ debug?: boolean }>().debug === true;
  const code = (error as { code?: unknown } | undefined)?.code;
  const prefix = error instanceof ConfigError || typeof code !== 'string' ? '' : `${code}: `;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: ${prefix}${message.split('\n')[0]}\n`);
  if (debug) {
    for (let cause: unknown = error; cause !== undefined; cause = (cause as { cause?: unknown }).cause) {
      process.stderr.write(`  ${cause instanceof Error ? (cause.stack ?? cause.message) : JSON.stringify(cause)}\n`);
    }
  }
  process.exit(1);
}

program.parseAsync(process.argv).catch(fail);
