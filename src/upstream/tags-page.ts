/**
 * @module upstream/tags-page
 * One page of tags/list and its Link to the next (distribution spec §Listing Tags; RFC 8288).
 */
import { OciError } from '../oci/errors.js';

/** The URL of rel="next" in a Link header, resolved against `base`; undefined on the last page. */
export function parseNextLink(link: string | undefined, base: URL): URL | undefined {
  if (link === undefined) return undefined;
  for (const match of link.matchAll(/<([^>]*)>([^,]*)/g)) {
    const [, target = '', params = ''] = match;
    if (/;\s*rel\s*=\s*"?next"?/i.test(params) && URL.canParse(target, base.href)) return new URL(target, base);
  }
  return undefined;
}

/** The tags of one page; `null` tags (an empty repository, as distribution answers) is an empty page. */
export function parseTagsPage(bytes: Buffer, host: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new OciError('UNAVAILABLE', `upstream ${host}: tags list is not JSON`, { status: 502, cause: error });
  }
  const tags = (parsed as { tags?: unknown } | null)?.tags;
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags)) {
    throw new OciError('UNAVAILABLE', `upstream ${host}: tags list without a tags array`, { status: 502 });
  }
  return tags.filter((tag): tag is string => typeof tag === 'string');
}
