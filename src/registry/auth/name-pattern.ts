/**
 * @module registry/auth/name-pattern
 * Repository name patterns as access rules and `local:` use them: `*` matches
 * within one path component, `**` matches any number of components (and the
 * slashes between them), anything else matches itself. `team/*` is team/app
 * but not team/app/x; `team/**` is both, and `**` is every name.
 */

export type NamePattern = (name: string) => boolean;

/** A pattern uses the name grammar's characters plus `*`; anything else is refused by the caller. */
export const namePatternSyntax = /^[a-z0-9._\-/*]+$/;

export function compileNamePattern(pattern: string): NamePattern {
  // Stryker disable next-line ConditionalExpression,StringLiteral: a shortcut; the general path compiles '**' to /^.*$/, the same set.
  if (pattern === '**') return () => true;
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      // `a/**` also matches `a` itself, as in gitignore and zot's policies.
      if (source.endsWith('/') && (i + 2 === pattern.length || pattern[i + 2] === '/')) {
        source = source.slice(0, -1) + '(?:/.*)?';
        // Past the second '*' only: the '/' that may follow is matched literally (`a/**/b` is
        // a/b or a/…/b, never ab).
        i++;
        continue;
      }
      source += '.*';
      i++;
    } else if (c === '*') {
      source += '[^/]*';
    } else {
      source += c.replace(/[.\\^$+?()[\]{}|-]/g, '\\$&');
    }
  }
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}

/** True when any of the patterns matches. */
export function matchesAny(patterns: readonly NamePattern[], name: string): boolean {
  return patterns.some((matches) => matches(name));
}
