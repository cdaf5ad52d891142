import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { bcryptHashPattern, parseHtpasswd, UserTable } from './user-table.js';

describe('UserTable', () => {
  it('checks passwords against bcrypt hashes; unknown users and wrong passwords fail', async () => {
    const hashes = new Map([['alice', await bcrypt.hash('right', 4)]]);
    const table = new UserTable(hashes);
    expect(table.size).toBe(1);
    expect(await table.verify('alice', 'right')).toBe(true);
    expect(await table.verify('alice', 'wrong')).toBe(false);
    expect(await table.verify('bob', 'right')).toBe(false);
    expect(await table.verify('alic', 'eright')).toBe(false);
  });

  it('trusts a verified password for 5 minutes, then asks bcrypt again', async () => {
    const clock = { now: 1_000_000 };
    const hashes = new Map([['alice', await bcrypt.hash('right', 4)]]);
    const table = new UserTable(hashes, () => clock.now);
    expect(await table.verify('alice', 'right')).toBe(true);
    // Taken away behind the cache's back: the remembered answer holds until it expires.
    hashes.delete('alice');
    clock.now += 5 * 60 * 1000 - 1;
    expect(await table.verify('alice', 'right')).toBe(true);
    clock.now += 1;
    expect(await table.verify('alice', 'right')).toBe(false);
  });

  it('never remembers a failure or an unknown user', async () => {
    const hashes = new Map<string, string>();
    const table = new UserTable(hashes);
    expect(await table.verify('alice', 'right')).toBe(false);
    hashes.set('alice', await bcrypt.hash('right', 4));
    expect(await table.verify('alice', 'right')).toBe(true);
  });
});

describe('parseHtpasswd', () => {
  const hash = bcrypt.hashSync('pw', 4);

  it('reads user:hash lines, skipping blank lines and comments', () => {
    const users = parseHtpasswd(`# users\n\nalice:${hash}\r\n  bob:${hash}  \n`);
    expect([...users.entries()]).toEqual([
      ['alice', hash],
      ['bob', hash],
    ]);
  });

  it('refuses anything but bcrypt, and lines without a user, naming the line', () => {
    expect(() => parseHtpasswd(`alice:${hash}\nbob:plain`)).toThrow('line 2 (bob): only bcrypt hashes are accepted');
    expect(() => parseHtpasswd('carol:$apr1$abc$def')).toThrow('line 1 (carol)');
    expect(() => parseHtpasswd(`:${hash}`)).toThrow('line 1: expected user:hash');
    expect(() => parseHtpasswd('no colon here')).toThrow('line 1: expected user:hash');
  });

  it('knows the bcrypt variants', () => {
    const body = hash.slice(4);
    for (const prefix of ['$2a$', '$2b$', '$2y$']) expect(bcryptHashPattern.test(prefix + body)).toBe(true);
    expect(bcryptHashPattern.test(`$2x$${body}`)).toBe(false);
    expect(bcryptHashPattern.test(`${hash}x`)).toBe(false);
    expect(bcryptHashPattern.test(`x${hash}`)).toBe(false);
  });
});
