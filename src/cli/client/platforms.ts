/**
 * @module cli/client/platforms
 * `--platform os/arch[/variant]` lists, matching them against an index's entries, and the
 * platform of this machine (what docker picks from an index when none is named).
 */
import type { Descriptor, Platform } from '../../oci/descriptor.js';
import { OciError } from '../../oci/errors.js';

/**
 * Commander's accumulator for a repeatable `--platform <list>`: every value given counts, joined as one
 * comma list (a job that adds a `--platform` must not silently drop the one before it).
 */
export function appendPlatformList(value: string, previous?: string): string {
  return previous === undefined ? value : `${previous},${value}`;
}

/** `linux/amd64,linux/arm64/v8` → platforms; a variant left out matches any. */
export function parsePlatforms(value: string): Platform[] {
  return value.split(',').map((item) => {
    const [os, architecture, variant, extra] = item.trim().split('/');
    if (os === undefined || os === '' || architecture === undefined || architecture === '' || extra !== undefined) {
      throw new OciError('UNSUPPORTED', `--platform: ${JSON.stringify(item)} is not os/arch or os/arch/variant`);
    }
    return variant === undefined || variant === '' ? { os, architecture } : { os, architecture, variant };
  });
}

export function platformMatches(want: Platform, have: Platform): boolean {
  return (
    want.os === have.os &&
    want.architecture === have.architecture &&
    (want.variant === undefined || want.variant === have.variant)
  );
}

export function formatPlatform(platform: Platform | undefined): string {
  if (platform === undefined) return 'unknown';
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined && p !== '').join('/');
}

const archNames: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** This machine's platform in OCI words (linux/amd64 on x64 Linux). */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return { os, architecture: archNames[process.arch] ?? process.arch };
}

/** The entry of an index for `want` (the host's platform when absent); an error listing the choices otherwise. */
export function pickPlatform(entries: readonly Descriptor[], want: Platform | undefined, what: string): Descriptor {
  const target = want ?? hostPlatform();
  // Attestation entries (unknown/unknown) are never an image to run.
  const found = entries.find((entry) => entry.platform !== undefined && platformMatches(target, entry.platform));
  if (found !== undefined) return found;
  const choices = entries
    .map((e) => formatPlatform(e.platform))
    .filter((p) => p !== 'unknown/unknown')
    .join(', ');
  throw new OciError(
    'MANIFEST_UNKNOWN',
    `${what} has no ${formatPlatform(target)} image (it has: ${choices}): pass --platform`,
  );
}
