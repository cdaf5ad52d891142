/**
 * @module cli/client/tree-text
 * An image tree as text, one line per node, drawn with box characters:
 *   docker.io/library/alpine:3.20  index  sha256:1e42…  7 platforms, 24.1 MB
 *   ├── linux/amd64  sha256:33735b…  3.6 MB
 *   │   ├── config   sha256:91ef0a…  1.5 kB
 *   │   └── layer    sha256:43c4264…  3.6 MB  cached
 * Sizes in decimal units, as docker prints them.
 */
import type { Digest } from '../../oci/digest.js';
import type { TreeNode } from './image-tree.js';

/** 12 hex characters tell digests apart in one image; --json has them whole. */
export function shortDigest(digest: Digest): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon + 13)}…`;
}

const units = ['B', 'kB', 'MB', 'GB', 'TB'];

/** 1500 → "1.5 kB", 24_100_000 → "24.1 MB" (docker's go-units HumanSize, one decimal). */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  // 999 960 B is "1.0 MB", not "1000.0 kB": the unit is the one its one-decimal rounding fits.
  while ((unit === 0 ? value >= 1000 : value >= 999.95) && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function head(node: TreeNode, title?: string): string {
  const parts: string[] = [];
  if (title !== undefined) parts.push(title, node.kind);
  else if (node.kind === 'config' || node.kind === 'layer') parts.push(node.kind.padEnd(6));
  else if (node.kind === 'referrer') parts.push(`referrer ${node.label ?? node.mediaType}`);
  else if (node.kind === 'attestation') parts.push('attestation');
  else parts.push(node.label ?? node.kind);
  parts.push(shortDigest(node.digest));
  const size = node.kind === 'config' || node.kind === 'layer' ? node.size : node.total;
  parts.push(
    node.platforms !== undefined
      ? `${node.platforms} platform${node.platforms === 1 ? '' : 's'}, ${formatSize(size)}`
      : formatSize(size),
  );
  if (node.cached === true) parts.push('cached');
  return parts.join('  ');
}

export function formatTree(root: TreeNode, title: string): string {
  const lines = [head(root, title)];
  const walk = (node: TreeNode, prefix: string): void => {
    node.children.forEach((child, i) => {
      const last = i === node.children.length - 1;
      lines.push(`${prefix}${last ? '└── ' : '├── '}${head(child)}`);
      walk(child, `${prefix}${last ? '    ' : '│   '}`);
    });
  };
  walk(root, '');
  return `${lines.join('\n')}\n`;
}
