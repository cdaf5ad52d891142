/**
 * LookupCache (store/lookup-cache.ts) on a real SQLite index: a remembered lookup is answered
 * without loading again; a write by another connection shows once externalCheckMs has passed (not
 * before: that is what saves a PRAGMA per lookup, and not after); misses are not remembered; and the
 * entries never exceed maxEntries. The clock is the constructor's `now`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from './database.js';
import { externalCheckMs, LookupCache, maxEntries } from './lookup-cache.js';

let dir: string;
let db: Db;
let other: Db;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-lookup-cache-'));
  db = openDatabase(join(dir, 'index.db'));
  // A second connection stands in for another wharf process on the same store.
  other = openDatabase(join(dir, 'index.db'));
  db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
  db.prepare("INSERT INTO kv VALUES ('a', 'one')").run();
});
afterEach(async () => {
  other.close();
  db.close();
  await rm(dir, { recursive: true, force: true });
});

/** A load of `key` from kv that counts its calls. */
function loader(from: Db): { load: (key: string) => () => string | undefined; calls: string[] } {
  const select = from.prepare<[string], string>('SELECT v FROM kv WHERE k = ?').pluck();
  const calls: string[] = [];
  return {
    calls,
    load: (key) => () => {
      calls.push(key);
      return select.get(key);
    },
  };
}

describe('LookupCache', () => {
  it('answers a remembered lookup without loading it again, and clear() forgets it', () => {
    const clock = { now: 1_000_000 };
    const cache = new LookupCache<string>(db, () => clock.now);
    const { load, calls } = loader(db);
    expect(cache.get('a', load('a'))).toBe('one');
    expect(cache.get('a', load('a'))).toBe('one');
    expect(calls).toEqual(['a']);
    expect(cache.size).toBe(1);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('a', load('a'))).toBe('one');
    expect(calls).toEqual(['a', 'a']);
  });

  it('keeps what it remembered across checks when nobody wrote', () => {
    const clock = { now: 1_000_000 };
    const cache = new LookupCache<string>(db, () => clock.now);
    const { load, calls } = loader(db);
    expect(cache.get('a', load('a'))).toBe('one');
    for (let i = 0; i < 3; i++) {
      clock.now += externalCheckMs;
      expect(cache.get('a', load('a'))).toBe('one');
    }
    expect(calls).toEqual(['a']);
  });

  it("shows another connection's write once externalCheckMs has passed since the last check, and not before", () => {
    const clock = { now: 1_000_000 };
    const cache = new LookupCache<string>(db, () => clock.now);
    const { load, calls } = loader(db);
    expect(cache.get('a', load('a'))).toBe('one');

    other.prepare("UPDATE kv SET v = 'two' WHERE k = 'a'").run();
    clock.now += externalCheckMs - 1;
    expect(cache.get('a', load('a'))).toBe('one');
    clock.now += 1;
    expect(cache.get('a', load('a'))).toBe('two');
    expect(calls).toEqual(['a', 'a']);

    // The window starts again at that check: a deletion right after it shows a full window later.
    other.prepare("DELETE FROM kv WHERE k = 'a'").run();
    clock.now += externalCheckMs - 1;
    expect(cache.get('a', load('a'))).toBe('two');
    clock.now += 1;
    expect(cache.get('a', load('a'))).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not remember a miss: a row written later is found', () => {
    const clock = { now: 1_000_000 };
    const cache = new LookupCache<string>(db, () => clock.now);
    const { load, calls } = loader(db);
    expect(cache.get('b', load('b'))).toBeUndefined();
    expect(cache.size).toBe(0);
    db.prepare("INSERT INTO kv VALUES ('b', 'bee')").run();
    cache.clear();
    expect(cache.get('b', load('b'))).toBe('bee');
    expect(cache.get('b', load('b'))).toBe('bee');
    expect(calls).toEqual(['b', 'b']);
  });

  it('remembers many lookups at once, and never more than maxEntries', () => {
    const clock = { now: 1_000_000 };
    const cache = new LookupCache<number>(db, () => clock.now);
    let loads = 0;
    const load = (value: number) => () => {
      loads++;
      return value;
    };
    for (let i = 0; i < maxEntries; i++) cache.get(`k${i}`, load(i));
    expect(cache.size).toBe(maxEntries);
    // All still remembered: none loads again.
    expect(cache.get('k0', load(-1))).toBe(0);
    expect(cache.get(`k${maxEntries - 1}`, load(-1))).toBe(maxEntries - 1);
    expect(loads).toBe(maxEntries);

    // One more: the cache starts over rather than grow, and keeps the newest.
    expect(cache.get('one-more', load(-2))).toBe(-2);
    expect(cache.size).toBeLessThanOrEqual(maxEntries);
    expect(cache.size).toBe(1);
    expect(cache.get('one-more', load(-3))).toBe(-2);
    expect(loads).toBe(maxEntries + 1);
  });
});
