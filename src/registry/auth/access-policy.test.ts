import { describe, expect, it } from 'vitest';
import { AccessPolicy, defaultRules, type Action, type NameClass } from './access-policy.js';

const local: NameClass = { mirrored: false, private: false, storeName: 'team/app' };
const mirrored: NameClass = {
  mirrored: true,
  private: false,
  storeName: 'docker.io/library/alpine',
  upstream: 'docker.io',
};
const privateName: NameClass = { mirrored: true, private: true, storeName: 'ghcr.io/corp/secret', upstream: 'ghcr.io' };

const sorted = (rights: ReadonlySet<Action>): Action[] => [...rights].sort();

describe('AccessPolicy with the default rules', () => {
  it('without users: anyone may pull, push and delete local names, only pull mirrored ones, nothing private', () => {
    const policy = new AccessPolicy(defaultRules(false));
    expect(sorted(policy.rights(undefined, local))).toEqual(['delete', 'pull', 'push']);
    expect(sorted(policy.rights(undefined, mirrored))).toEqual(['pull']);
    expect(sorted(policy.rights(undefined, privateName))).toEqual([]);
    expect(policy.anonymousMayWrite()).toBe(true);
  });

  it('with users: signed-in users write local names and pull private ones, anonymous clients only pull public ones', () => {
    const policy = new AccessPolicy(defaultRules(true));
    expect(sorted(policy.rights('alice', local))).toEqual(['delete', 'pull', 'push']);
    expect(sorted(policy.rights('alice', mirrored))).toEqual(['pull']);
    expect(sorted(policy.rights('alice', privateName))).toEqual(['pull']);
    expect(sorted(policy.rights(undefined, local))).toEqual(['pull']);
    expect(sorted(policy.rights(undefined, mirrored))).toEqual(['pull']);
    expect(sorted(policy.rights(undefined, privateName))).toEqual([]);
    expect(policy.anonymousMayWrite()).toBe(false);
  });
});

describe('AccessPolicy with configured rules', () => {
  const policy = new AccessPolicy([
    { repositories: ['team/*'], users: ['bob'], allow: ['push'] },
    { repositories: ['team/**'], users: ['anonymous'], allow: ['pull'] },
    { repositories: ['ghcr.io/corp/**'], users: ['anonymous'], allow: ['pull', 'push'] },
    { repositories: ['ghcr.io/corp/**'], users: ['carol'], allow: ['pull'] },
    { repositories: ['docker.io/**'], users: ['root'], allow: ['admin'] },
    { repositories: ['ops/*'], users: ['*'], allow: ['delete'] },
  ]);

  it('gives a named user the union of its rules and of the anonymous ones, on matching names only', () => {
    expect(sorted(policy.rights('bob', local))).toEqual(['pull', 'push']);
    const deeper: NameClass = { ...local, storeName: 'team/app/x' };
    expect(sorted(policy.rights('bob', deeper))).toEqual(['pull']);
    expect(sorted(policy.rights('dave', local))).toEqual(['pull']);
    expect(sorted(policy.rights(undefined, { ...local, storeName: 'other/app' }))).toEqual([]);
  });

  it("gives '*' rules to every signed-in user and never to anonymous clients", () => {
    const ops: NameClass = { ...local, storeName: 'ops/tool' };
    expect(sorted(policy.rights('dave', ops))).toEqual(['delete']);
    expect(sorted(policy.rights('bob', ops))).toEqual(['delete']);
    expect(sorted(policy.rights(undefined, ops))).toEqual([]);
  });

  it('ignores anonymous rules on private names, for anonymous clients and signed-in users alike', () => {
    expect(sorted(policy.rights(undefined, privateName))).toEqual([]);
    expect(sorted(policy.rights('dave', privateName))).toEqual([]);
    expect(sorted(policy.rights('carol', privateName))).toEqual(['pull']);
    // The same name, public: the anonymous rule applies, and push is still cut (mirrored).
    expect(sorted(policy.rights(undefined, { ...privateName, private: false }))).toEqual(['pull']);
  });

  it('lets admin do everything, on mirrored names too; without admin a mirrored name is read-only', () => {
    expect(sorted(policy.rights('root', mirrored))).toEqual(['admin', 'delete', 'pull', 'push']);
    expect(sorted(policy.rights('bob', { ...mirrored, storeName: 'team/app' }))).toEqual(['pull']);
    // Off docker.io/** root has only what the anonymous rule gives everyone.
    expect(sorted(policy.rights('root', local))).toEqual(['pull']);
  });

  it('keeps answers apart per user and per class of the same name', () => {
    const fresh = new AccessPolicy([{ repositories: ['**'], users: ['anonymous'], allow: ['pull', 'push'] }]);
    const name = 'shared/app';
    expect(sorted(fresh.rights(undefined, { mirrored: false, private: false, storeName: name }))).toEqual([
      'pull',
      'push',
    ]);
    expect(sorted(fresh.rights(undefined, { mirrored: true, private: false, storeName: name }))).toEqual(['pull']);
    expect(sorted(fresh.rights(undefined, { mirrored: true, private: true, storeName: name }))).toEqual([]);
    expect(sorted(fresh.rights('eve', { mirrored: true, private: true, storeName: name }))).toEqual([]);
    expect(sorted(fresh.rights(undefined, { mirrored: false, private: false, storeName: name }))).toEqual([
      'pull',
      'push',
    ]);
  });

  it('answers the same after its cache of answers was emptied', () => {
    const many = new AccessPolicy(defaultRules(true));
    for (let i = 0; i < 10_001; i++) many.rights(`user${i}`, local);
    expect(sorted(many.rights('alice', local))).toEqual(['delete', 'pull', 'push']);
    expect(sorted(many.rights(undefined, privateName))).toEqual([]);
  });
});

describe('rules with several patterns', () => {
  it('apply when any one of their patterns matches', () => {
    const policy = new AccessPolicy([{ repositories: ['other/*', 'team/*'], users: ['bob'], allow: ['push'] }]);
    expect(sorted(policy.rights('bob', local))).toEqual(['push']);
    expect(sorted(policy.rights('bob', { ...local, storeName: 'other/x' }))).toEqual(['push']);
  });
});

describe('anonymousMayWrite', () => {
  it('is true only when a rule for anonymous allows push or admin', () => {
    const rule = (users: string[], allow: Action[]) => new AccessPolicy([{ repositories: ['**'], users, allow }]);
    expect(rule(['anonymous'], ['push']).anonymousMayWrite()).toBe(true);
    expect(rule(['anonymous'], ['admin']).anonymousMayWrite()).toBe(true);
    expect(rule(['anonymous'], ['pull', 'delete']).anonymousMayWrite()).toBe(false);
    expect(rule(['*'], ['push', 'admin']).anonymousMayWrite()).toBe(false);
    expect(rule(['bob'], ['admin']).anonymousMayWrite()).toBe(false);
    const mixed = new AccessPolicy([
      { repositories: ['**'], users: ['bob'], allow: ['pull'] },
      { repositories: ['**'], users: ['anonymous'], allow: ['push'] },
    ]);
    expect(mixed.anonymousMayWrite()).toBe(true);
  });
});
