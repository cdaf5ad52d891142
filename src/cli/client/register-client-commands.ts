/**
 * @module cli/client/register-client-commands
 * The client commands on the `wharf` program: each with its flags, a one-line description and
 * an example in --help. Errors propagate to main's one-line `error: CODE: message` handler.
 */
import type { Command } from 'commander';
import { runCopy, type CopyFlags } from './copy-command.js';
import { appendPlatformList } from './platforms.js';
import { runTree, type TreeFlags } from './tree-command.js';
import {
  runBlobDelete,
  runBlobGet,
  runBlobHead,
  runBlobPut,
  runDelete,
  type BlobGetFlags,
  type BlobPutFlags,
} from './blob-commands.js';
import { runPullDir, runPushDir, type PushDirFlags } from './dir-commands.js';
import { defaultArtifactType } from './dir-artifact.js';
import { registryOptions, type Env, type RegistryFlags } from './client-context.js';
import { runConfig, runDigest, runManifest, runRepos, runTags, type ManifestFlags } from './inspect-commands.js';

function example(command: Command, text: string): Command {
  return command.addHelpText('after', `\nExample:\n  ${text}\n`);
}

export function registerClientCommands(program: Command, env: Env): void {
  example(
    registryOptions(program.command('tags').description('list every tag of a repository (all pages)'))
      .argument('<repository>', 'e.g. alpine, ghcr.io/org/app, 127.0.0.1:5000/team/app')
      .option('--json', 'one JSON document'),
    'wharf tags docker.io/library/alpine',
  ).action((repo: string, flags: RegistryFlags) => runTags(repo, flags, env));

  example(
    registryOptions(program.command('repos').description("list a registry's repositories (its catalog, all pages)"))
      .argument('<registry>', 'host[:port], e.g. 127.0.0.1:5000')
      .option('--json', 'one JSON document'),
    'wharf repos 127.0.0.1:5000',
  ).action((registry: string, flags: RegistryFlags) => runRepos(registry, flags, env));

  example(
    registryOptions(
      program.command('digest').description('print the digest of the manifest a reference names (HEAD, no pull)'),
    )
      .argument('<ref>', 'e.g. alpine:3.20')
      .option('--json', 'media type, digest and size as JSON'),
    'wharf digest alpine:3.20',
  ).action((ref: string, flags: RegistryFlags) => runDigest(ref, flags, env));

  example(
    registryOptions(
      program.command('manifest').description('print a manifest (pretty JSON; --raw for its exact bytes)'),
    )
      .argument('<ref>', 'e.g. alpine:3.20 or name@sha256:…')
      .option('--raw', 'the exact bytes the registry holds (they hash to the digest)')
      .option('--platform <os/arch[/variant]>', "an index's manifest for this platform")
      .option('--json', 'media type, digest, size and the manifest as one JSON document'),
    'wharf manifest --platform linux/arm64 alpine:3.20',
  ).action((ref: string, flags: ManifestFlags) => runManifest(ref, flags, env));

  example(
    registryOptions(
      program
        .command('config')
        .description('print the image config (env, entrypoint, history, rootfs) without pulling layers'),
    )
      .argument('<ref>', 'e.g. alpine:3.20')
      .option('--platform <os/arch[/variant]>', 'which image of an index (default: this machine)')
      .option('--raw', 'the exact bytes of the config blob')
      .option('--json', 'digest, media type and the config as one JSON document'),
    'wharf config --platform linux/amd64 alpine:3.20',
  ).action((ref: string, flags: ManifestFlags) => runConfig(ref, flags, env));

  example(
    registryOptions(
      program
        .command('copy')
        .description(
          'copy an image between registries (or to/from oci-archive:, docker-archive:, oci: ends), digests kept',
        )
        .argument(
          '<source>',
          'e.g. alpine:3.20, oci-archive:./alpine.tar, docker-archive:./save.tar, oci:./layout[:<ref.name>]',
        )
        .argument('<destination>', 'e.g. 127.0.0.1:5000/library/alpine:3.20, oci-archive:./alpine.tar'),
    )
      .option(
        '--platform <list>',
        'only these platforms, e.g. linux/amd64 (one: that image itself) or linux/amd64,linux/arm64 (repeatable)',
        appendPlatformList,
      )
      .option('--referrers', 'also copy the referrers (signatures, SBOMs) of the image')
      .option('-q, --quiet', 'no progress, no summary')
      .option('--json', 'the result as one JSON document (no progress)'),
    'wharf copy docker.io/library/alpine:3.20 127.0.0.1:5000/library/alpine:3.20',
  ).action((source: string, destination: string, flags: CopyFlags) => runCopy(source, destination, flags, env));

  example(
    registryOptions(
      program
        .command('tree')
        .description('draw an image: index, platforms, config and layers, sizes, referrers (no layer is pulled)')
        .argument('<ref>', 'e.g. alpine:3.20'),
    )
      .option('-d, --data <dir>', 'mark the blobs this wharf store holds as cached (env WHARF_DATA)')
      .option('--no-referrers', 'skip looking up referrers (signatures, SBOMs)')
      .option('--json', 'the tree as one JSON document, full digests'),
    'wharf tree --data /var/lib/wharf docker.io/library/alpine:3.20',
  ).action((ref: string, flags: TreeFlags) => runTree(ref, flags, env));

  example(
    registryOptions(
      program.command('delete').description('delete a manifest by tag or by digest (a digest removes every tag on it)'),
    )
      .argument('<ref>', 'name:tag or name@digest')
      .option('--json', 'the result as JSON'),
    'wharf delete 127.0.0.1:5000/team/app@sha256:…',
  ).action((ref: string, flags: RegistryFlags) => runDelete(ref, flags, env));

  const blob = program.command('blob').description('read, write or check one blob of a repository');
  example(
    registryOptions(blob.command('get').description('stream a blob to stdout or a file, verified against its digest'))
      .argument('<repository>', 'e.g. 127.0.0.1:5000/team/app')
      .argument('<digest>', 'sha256:…')
      .option('-o, --output <file>', 'write here (complete or not at all) instead of stdout'),
    'wharf blob get -o layer.tgz alpine sha256:…',
  ).action((repo: string, digest: string, flags: BlobGetFlags) => runBlobGet(repo, digest, flags, env));
  example(
    registryOptions(
      blob.command('head').description("print a blob's digest and size if the repository has it (exit 1 if not)"),
    )
      .argument('<repository>')
      .argument('<digest>')
      .option('--json', 'digest and size as JSON'),
    'wharf blob head alpine sha256:…',
  ).action((repo: string, digest: string, flags: RegistryFlags) => runBlobHead(repo, digest, flags, env));
  example(
    registryOptions(blob.command('put').description('upload a blob from a file or stdin; prints its digest'))
      .argument('<repository>')
      .argument('[digest]', 'the digest the bytes must have (checked while they stream)')
      .option('-i, --input <file>', 'read this file (default: stdin)')
      .option('--json', 'digest and size as JSON'),
    'wharf blob put -i config.json 127.0.0.1:5000/team/app',
  ).action((repo: string, digest: string | undefined, flags: BlobPutFlags) => runBlobPut(repo, digest, flags, env));
  example(
    registryOptions(blob.command('delete').description('delete a blob from a repository'))
      .argument('<repository>')
      .argument('<digest>')
      .option('--json', 'the result as JSON'),
    'wharf blob delete 127.0.0.1:5000/team/app sha256:…',
  ).action((repo: string, digest: string, flags: RegistryFlags) => runBlobDelete(repo, digest, flags, env));

  example(
    registryOptions(
      program
        .command('push-dir')
        .description('push a folder as an OCI artifact; the same folder always gives the same digest')
        .argument('<dir>', 'the folder')
        .argument('<ref>', 'e.g. 127.0.0.1:5000/team/manifests:v1'),
    )
      .option('--artifact-type <type>', `the artifact's type (default ${defaultArtifactType})`)
      .option('--annotation <key=value>', 'a manifest annotation (repeatable)', (v: string, p: string[] = []) => [
        ...p,
        v,
      ])
      .option(
        '--tar',
        'one gzip tar layer for the whole tree (keeps folders, modes and symlinks) instead of one layer per file',
      )
      .option('--json', 'the result as JSON'),
    'wharf push-dir ./deploy 127.0.0.1:5000/team/deploy:v1',
  ).action((dir: string, ref: string, flags: PushDirFlags) => runPushDir(dir, ref, flags, env));

  example(
    registryOptions(
      program
        .command('pull-dir')
        .description('restore a folder pushed with push-dir (verified; refuses entries that escape the folder)')
        .argument('<ref>', 'e.g. 127.0.0.1:5000/team/manifests:v1')
        .argument('<dir>', 'a new or empty folder'),
    ).option('--json', 'the result as JSON'),
    'wharf pull-dir 127.0.0.1:5000/team/deploy:v1 ./deploy',
  ).action((ref: string, dir: string, flags: RegistryFlags) => runPullDir(ref, dir, flags, env));
}
