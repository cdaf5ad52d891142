#!/usr/bin/env node
/**
 * @module cli/main
 * The `wharf` command line: the composition root. Only this layer reads
 * process.env and argv, exits the process or opens a listening socket.
 */
import { Argument, Command, Option } from 'commander';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, logLevels, type ConfigSources } from './config.js';
import { logFormats, makeLogger } from './make-logger.js';
import { startServer } from './start-server.js';
import { formatMirrorConfig, mirrorClients, type MirrorClient } from './mirror-config.js';
import { defaultUpstreamUrls } from './config-values.js';
import { runVerify, type VerifyFlags } from './verify-command.js';
import { runExport, type ExportFlags } from './export-command.js';
import { runImport, type ImportFlags } from './import-command.js';
import { runPreload, type PreloadFlags } from './preload-command.js';
import { runLs, type LsFlags } from './ls-command.js';
import { explainError, type PathOption } from './explain-error.js';
import { runStats, type StatsFlags } from './stats-command.js';
import { appendPlatformList } from './client/platforms.js';
import { registerClientCommands } from './client/register-client-commands.js';
import { runGc, type GcFlags } from './gc-command.js';

/** package.json sits at the package root, two levels above both src/cli and dist/cli. */
const packageVersion = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }
).version;

const program = new Command('wharf')
  .description('A caching pull-through OCI registry mirror')
  .version(packageVersion, '-V, --version', 'print the version of wharf')
  .option('--debug', 'print the cause chain of errors')
  .showHelpAfterError();

/** The options every command that works on a store takes. */
function storeOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'YAML config file (env WHARF_CONFIG)')
    .option('-d, --data <dir>', 'data directory (env WHARF_DATA, default ./data)');
}

/** The options of every command that may reach upstream registries. */
function upstreamOptions(command: Command): Command {
  return command
    .option(
      '--upstream <host=url>',
      'add or override an upstream registry, e.g. docker.io=http://127.0.0.1:6000 (repeatable; env WHARF_UPSTREAMS)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--mirror-upstream <host=url>',
      'an upstream that is itself a mirror (another wharf): sent the original names with ?ns=<host> (repeatable; env WHARF_MIRROR_UPSTREAMS)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--default-upstream <host>', 'upstream for clients that name none (env WHARF_DEFAULT_UPSTREAM)')
    .option('--offline', 'serve only what is local; never dial out (env WHARF_OFFLINE)')
    .option(
      '--local <pattern>',
      'with --default-upstream: plain names that stay local, e.g. "team/*" (repeatable; env WHARF_LOCAL)',
      (value: string, previous: string[] = []) => [...previous, value],
    );
}

interface ServeFlags {
  config?: string;
  data?: string;
  listen?: string;
  logLevel?: string;
  logFormat?: string;
  upstream?: string[];
  mirrorUpstream?: string[];
  defaultUpstream?: string;
  offline?: boolean;
  local?: string[];
  htpasswd?: string;
  tlsCert?: string;
  tlsKey?: string;
}

upstreamOptions(
  storeOptions(program.command('serve').description('serve the registry API and the pull-through mirror')),
)
  .option('-l, --listen <addr>', 'host:port to listen on (env WHARF_LISTEN, default :5000)')
  .addOption(new Option('--log-level <level>', 'log level (env WHARF_LOG_LEVEL, default info)').choices(logLevels))
  .addOption(
    new Option('--log-format <format>', 'json, pretty, or auto: pretty on a terminal (env WHARF_LOG_FORMAT)').choices(
      logFormats,
    ),
  )
  .option('--htpasswd <file>', 'users who may sign in: an htpasswd file of bcrypt entries (env WHARF_HTPASSWD)')
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate, re-read on SIGHUP (env WHARF_TLS_CERT)')
  .option('--tls-key <file>', 'the PEM private key of --tls-cert (env WHARF_TLS_KEY)')
  .action(async (flags: ServeFlags) => {
    const sources: ConfigSources = {
      file: flags.config ?? process.env.WHARF_CONFIG,
      env: process.env,
      flags: {
        data: flags.data,
        listen: flags.listen,
        logLevel: flags.logLevel,
        logFormat: flags.logFormat,
        defaultUpstream: flags.defaultUpstream,
        offline: flags.offline === true ? 'true' : undefined,
        htpasswd: flags.htpasswd,
        tlsCert: flags.tlsCert,
        tlsKey: flags.tlsKey,
      },
      upstreamFlags: flags.upstream ?? [],
      mirrorUpstreamFlags: flags.mirrorUpstream ?? [],
      localFlags: flags.local ?? [],
    };
    const config = loadConfig(sources);
    pathOptions.push({ path: config.dataDir, option: '--data (WHARF_DATA, data:)' });
    if (config.tls !== undefined) {
      pathOptions.push({ path: config.tls.cert, option: '--tls-cert (WHARF_TLS_CERT, tls.cert:)' });
      pathOptions.push({ path: config.tls.key, option: '--tls-key (WHARF_TLS_KEY, tls.key:)' });
    }
    const logger = makeLogger(config.logLevel, config.logFormat);
    const server = await startServer({
      dataDir: config.dataDir,
      host: config.listen.host,
      port: config.listen.port,
      logLevel: config.logLevel,
      logger,
      uploadMaxAgeMs: config.uploadMaxAgeMs,
      shutdownGraceMs: config.shutdownGraceMs,
      upstreams: config.upstreams,
      defaultUpstream: config.defaultUpstream,
      offline: config.offline,
      local: config.local,
      auth: config.auth,
      maxConcurrentFills: config.maxConcurrentFills,
      uploads: config.uploads,
      limits: config.limits,
      tls: config.tls,
      accessLog: config.accessLog,
      metricsPublic: config.metricsPublic,
      verifyReads: config.verifyReads,
      sparseManifests: config.sparseManifests,
      lifecycle: config.lifecycle,
    });
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down: finishing requests in flight');
      server.close().then(
        () => process.exit(0),
        (error: unknown) => fail(error),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // SIGHUP (never the default action, which kills): a renewed certificate for new connections,
    // and the upstreams' credentials from the config file, environment and Docker config read
    // again. Anything else in the config needs a restart; a config that no longer loads changes nothing.
    process.on('SIGHUP', () => {
      void server.reloadTls();
      let reread: ReturnType<typeof loadConfig>;
      try {
        reread = loadConfig({ ...sources, env: process.env });
      } catch (error) {
        logger.error({ signal: 'SIGHUP', reason: explainError(error) }, 'config not reloaded: keeping what is in use');
        return;
      }
      const upstreams = server.reloadUpstreamCredentials(reread.upstreams);
      logger.info({ signal: 'SIGHUP', upstreams }, 'upstream credentials reloaded');
    });
    // `wharf gc` beside serve asks for this (cli/gc-command.ts): one gc now, reported in the log.
    process.on('SIGUSR2', () => {
      server.runGc().catch((error: unknown) => logger.warn({ err: error }, 'gc on SIGUSR2 failed'));
    });
    // Last: whoever waits for this line may signal the process at once, so the handlers are in place.
    const shown = server.host.includes(':') ? `[${server.host}]` : server.host;
    // The banner is a log line like the others (no bare text among JSON lines), written whatever the
    // level: scripts and test/support/spawn-wharf.ts wait for "listening on http(s)://host:port".
    logger.child({}, { level: 'info' }).info(
      {
        listen: `${shown}:${server.port}`,
        data: config.dataDir,
        upstreams: config.upstreams.map((u) => `${u.host}=${u.url}${u.mirror === true ? ' (mirror: ?ns=)' : ''}`),
        defaultUpstream: config.defaultUpstream,
        offline: config.offline,
        local: config.local,
        users: config.auth.users.size,
        maxConnections: config.limits.maxConnections,
        tls: config.tls !== undefined,
      },
      `wharf listening on ${server.scheme}://${shown}:${server.port}, data in ${config.dataDir}`,
    );
  });

program
  .command('mirror-config')
  .description('print the client configuration that makes docker, containerd or podman pull through wharf')
  .addArgument(new Argument('<client>', 'the client to configure').choices(mirrorClients))
  .requiredOption('--url <url>', "wharf's URL as clients reach it, e.g. http://mirror.local:5000")
  .option(
    '--registry <host>',
    `a registry to mirror (repeatable; default: ${Object.keys(defaultUpstreamUrls).join(', ')})`,
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .option('--out <dir>', 'write the files under this directory (their full paths inside it) instead of printing them')
  .action((client: MirrorClient, flags: { url: string; registry?: string[]; out?: string }) => {
    const config = formatMirrorConfig(client, {
      url: flags.url,
      registries: flags.registry ?? Object.keys(defaultUpstreamUrls),
    });
    if (flags.out !== undefined) {
      // DIR/etc/docker/daemon.json and so on: `cp -r DIR/etc /` installs them, or review them first.
      for (const file of config.files) {
        const target = join(flags.out, file.path);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, file.content.endsWith('\n') ? file.content : `${file.content}\n`);
        process.stdout.write(`wrote ${target} (for ${file.path})\n`);
      }
      for (const note of config.notes) process.stderr.write(`note: ${note}\n`);
      return;
    }
    // One file prints as it is (daemon.json must stay valid JSON when redirected); several get a
    // comment line naming their path (TOML comments). Notes go to stderr.
    for (const file of config.files) {
      if (config.files.length > 1) process.stdout.write(`# ==> ${file.path} <==\n`);
      process.stdout.write(file.content.endsWith('\n') ? file.content : `${file.content}\n`);
    }
    if (config.files.length === 1) process.stderr.write(`note: write the above to ${config.files[0]?.path}\n`);
    for (const note of config.notes) process.stderr.write(`note: ${note}\n`);
  });

storeOptions(
  program
    .command('verify')
    .description(
      'check the store: re-hash every blob file and check the index against the files (--repair: quarantine what fails)',
    ),
)
  .option('--quick', 'check file sizes only, no hashing')
  .option('--repair', 'quarantine blob files that fail and drop rows whose file is missing (not beside wharf serve)')
  .action(async (flags: VerifyFlags) => {
    process.exitCode = await runVerify(flags, process.env);
  });

/** Paths the configuration named, so an error about one of them can name the option (explain-error.ts). */
const pathOptions: PathOption[] = [];

/** --quiet and --json, for commands that report progress. */
function progressOptions(command: Command): Command {
  return command
    .option('-q, --quiet', 'no progress, no summary')
    .option('--json', 'progress as one JSON event per line (stderr when stdout carries the archive)');
}

progressOptions(
  storeOptions(
    program
      .command('export')
      .description('write images (all platforms) as an OCI image layout tar; may run beside wharf serve')
      .argument('[ref...]', 'images as the store names them: docker.io/library/alpine:3.20, team/app:v1, name@digest'),
  ),
)
  .requiredOption('-o, --output <path>', 'the tar to write, - for stdout, or dir/ for a layout folder')
  .option('--all', 'every tagged image in the store')
  .option('--referrers', 'also the referrers (signatures, SBOMs) of every manifest exported')
  .action(async (refs: string[], flags: ExportFlags) => {
    await runExport(refs, flags, process.env);
  });

progressOptions(
  storeOptions(
    program
      .command('import')
      .description('read an OCI image layout (tar, tar.gz, directory or - for stdin) into the store, all or nothing')
      .argument('<source>', 'a file, a directory, or - for stdin'),
  ),
)
  .option('--name <repository>', 'the repository for entries whose ref.name carries no registry host')
  .option(
    '--local <pattern>',
    'plain names in a layout that stay local instead of docker.io/…, e.g. "team/*" (repeatable; env WHARF_LOCAL)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .action(async (source: string, flags: ImportFlags) => {
    await runImport(source, flags, process.env);
  });

progressOptions(
  upstreamOptions(
    storeOptions(
      program
        .command('preload')
        .description('fetch images from their upstreams into the store (all platforms by default), pinned')
        .argument('[ref...]', 'images: docker.io/library/alpine:3.20, or alpine:3.20 with --default-upstream'),
    ),
  ),
)
  .option('-f, --file <file>', 'more images, one a line (# comments)')
  .option(
    '--platform <list>',
    'only these platforms of an index, e.g. linux/amd64,linux/arm64/v8 (repeatable; the index is kept whole)',
    appendPlatformList,
  )
  .option('--referrers', 'also the referrers (signatures, SBOMs) of every manifest fetched')
  .action(async (refs: string[], flags: PreloadFlags) => {
    await runPreload(refs, flags, process.env);
  });

storeOptions(
  program
    .command('ls')
    .description('list the images in the store: tags, digests, platforms, sizes, source; may run beside wharf serve')
    .argument('[pattern]', "repositories to list, e.g. 'docker.io/**' or team/*"),
)
  .option('--json', 'one JSON object per image and line')
  .action(async (pattern: string | undefined, flags: LsFlags) => {
    await runLs(pattern, flags, process.env);
  });

storeOptions(
  program
    .command('du')
    .description('bytes in the store: pinned and cached, by upstream and by repository; may run beside wharf serve'),
)
  .option('--json', 'one JSON object')
  .action(async (flags: StatsFlags) => {
    await runStats(flags, process.env, false);
  });

storeOptions(
  program.command('stats').description("what du shows, plus the running server's hit ratio (asked of its /metrics)"),
)
  .option('--json', 'one JSON object')
  .option('--url <url>', 'the running wharf to ask for hit counters (default: from listen)')
  .action(async (flags: StatsFlags) => {
    await runStats(flags, process.env, true);
  });

// tags, repos, digest, manifest, config, tree, copy, delete, blob, push-dir, pull-dir (cli/client/).
registerClientCommands(program, process.env);

storeOptions(
  program
    .command('gc')
    .description(
      'remove what nothing refers to: untagged manifests, blobs, links and uploads past store.gc.grace ' +
        '(wharf serve runs it on a schedule; beside it, only --dry-run)',
    ),
)
  .option('--dry-run', 'print what would go and the bytes it would free; delete nothing')
  .option('--json', 'the report as one JSON object')
  .option('--grace <duration>', 'keep what was created or read within this long (default store.gc.grace, 1h)')
  .action(async (flags: GcFlags) => {
    await runGc(flags, process.env);
  });

/** One plain line, `error: CODE: message`, and exit 1; --debug adds the cause chain. */
function fail(error: unknown): never {
  const debug = program.opts<{ debug?: boolean }>().debug === true;
  process.stderr.write(`error: ${explainError(error, pathOptions)}\n`);
  if (debug) {
    for (let cause: unknown = error; cause !== undefined; cause = (cause as { cause?: unknown }).cause) {
      process.stderr.write(`  ${cause instanceof Error ? (cause.stack ?? cause.message) : JSON.stringify(cause)}\n`);
    }
  }
  process.exit(1);
}

program.parseAsync(process.argv).catch(fail);
