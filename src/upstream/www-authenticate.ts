/**
 * @module upstream/www-authenticate
 * Parses WWW-Authenticate challenges (RFC 7235 §4.1, RFC 6750 §3): one header may hold several
 * challenges ("Basic realm=\"x\", Bearer realm=…"), values may be quoted and contain commas
 * (scope="repository:a/b:pull,push"), and a response may carry several header lines.
 */

export interface Challenge {
  /** Lower-cased: 'bearer', 'basic', … */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

const tokenChar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

function parseHeader(header: string, out: Challenge[]): void {
  let i = 0;
  const n = header.length;
  let current: Challenge | undefined;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && tokenChar.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      // quoted-pair: a backslash makes the next character literal (RFC 7230 §3.2.6).
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    i++; // closing quote (or end of input on a malformed header)
    return value;
  };
  const readBare = (): string => {
    // Lenient: some servers leave URLs unquoted, which is not a token; read up to the next separator.
    const start = i;
    while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
    return header.slice(start, i);
  };

  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (token === '') {
      i++; // a character that starts nothing we understand: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (header[i] === '=' && current !== undefined) {
      i++;
      skipSpace();
      current.params[token.toLowerCase()] = header[i] === '"' ? readQuoted() : readBare();
      continue;
    }
    // A token not followed by '=' starts a new challenge: its auth-scheme.
    current = { scheme: token.toLowerCase(), params: {} };
    out.push(current);
  }
}

export function parseWwwAuthenticate(values: string | readonly string[] | undefined): Challenge[] {
  if (values === undefined) return [];
  const out: Challenge[] = [];
  for (const header of typeof values === 'string' ? [values] : values) parseHeader(header, out);
  return out;
}

/** The challenge to answer: Bearer when offered (it scopes access per repository), else Basic. */
export function pickChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
