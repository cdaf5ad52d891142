/**
 * @module registry/auth/user-table
 * The users clients sign in as: name → bcrypt hash (from an htpasswd file made
 * with `htpasswd -B`, or the config). Passwords are checked with bcryptjs's
 * asynchronous compare, which yields to the event loop between rounds. A
 * successful check is remembered briefly (keyed by a hash of name and
 * password), because Basic clients send their password on every request and a
 * bcrypt compare costs ~75 ms of CPU here.
 */
import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** bcrypt only ($2a$, $2b$, $2y$): plain text, crypt, MD5 ($apr1$) and SHA1 htpasswd entries are refused. */
export const bcryptHashPattern = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/** How long a verified password is trusted without running bcrypt again. */
const verifiedTtlMs = 5 * 60 * 1000;
/** Bounded: a flood of distinct (correct) passwords cannot grow memory without end. */
const maxVerified = 1000;

export class UserTable {
  private readonly verified = new Map<string, number>();
  /**
   * Compared against for unknown users, so a miss costs what a hit costs (no user enumeration by
   * timing). Made on first use: a registry without users never pays the ~75 ms.
   */
  private decoy: string | undefined;
  /** Per process: the cache keys mean nothing outside it. */
  private readonly pepper = randomBytes(32);

  constructor(
    private readonly hashes: ReadonlyMap<string, string>,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.hashes.size;
  }

  async verify(user: string, password: string): Promise<boolean> {
    const key = createHash('sha256').update(this.pepper).update(user).update('\0').update(password).digest('hex');
    const until = this.verified.get(key);
    // Stryker disable next-line ConditionalExpression: `undefined > now` is false too; the first test only reads clearly.
    if (until !== undefined && until > this.now()) return true;
    const hash = this.hashes.get(user);
    const ok = await bcrypt.compare(
      password,
      hash ?? (this.decoy ??= await bcrypt.hash(randomBytes(16).toString('hex'), 10)),
    );
    // Stryker disable next-line ConditionalExpression: an unknown user's password would have to match a random decoy hash.
    if (!ok || hash === undefined) return false;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: forgetting sooner or later costs a bcrypt compare, never a wrong answer.
    if (this.verified.size >= maxVerified) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(key, this.now() + verifiedTtlMs);
    return true;
  }
}

/** `user:hash` lines; blank lines and `#` comments skipped. Throws with the line number on anything else. */
export function parseHtpasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0) throw new Error(`line ${index + 1}: expected user:hash`);
    if (!bcryptHashPattern.test(hash)) {
      throw new Error(`line ${index + 1} (${user}): only bcrypt hashes are accepted (htpasswd -B)`);
    }
    users.set(user, hash);
  });
  return users;
}
