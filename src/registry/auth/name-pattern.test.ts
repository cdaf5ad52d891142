import { describe, expect, it } from 'vitest';
import { compileNamePattern, matchesAny, namePatternSyntax } from './name-pattern.js';

describe('compileNamePattern', () => {
  it('matches one component with * and any number with **', () => {
    const one = compileNamePattern('team/*');
    expect(one('team/app')).toBe(true);
    expect(one('team/app/x')).toBe(false);
    expect(one('team')).toBe(false);
    expect(one('teams/app')).toBe(false);
    const any = compileNamePattern('team/**');
    expect(any('team')).toBe(true);
    expect(any('team/app/x')).toBe(true);
    expect(any('teamx/app')).toBe(false);
    expect(compileNamePattern('**')('a/b/c')).toBe(true);
  });

  it('takes ** anywhere: a middle component, a prefix, or inside a component', () => {
    const middle = compileNamePattern('team/**/app');
    expect(middle('team/app')).toBe(true);
    expect(middle('team/x/y/app')).toBe(true);
    expect(middle('teamx/app')).toBe(false);
    expect(middle('team/app/x')).toBe(false);
    // Found by mutation testing: the '/' after '**' was dropped, so these matched.
    expect(middle('teamapp')).toBe(false);
    expect(middle('team/xapp')).toBe(false);
    const prefix = compileNamePattern('**/app');
    expect(prefix('team/app')).toBe(true);
    expect(prefix('a/b/app')).toBe(true);
    expect(prefix('team/apps')).toBe(false);
    const inside = compileNamePattern('a**b');
    expect(inside('ab')).toBe(true);
    expect(inside('a/x/b')).toBe(true);
    expect(inside('a/x/c')).toBe(false);
    const tail = compileNamePattern('team/**x');
    expect(tail('team/ax')).toBe(true);
    expect(tail('teamx')).toBe(false);
  });

  it('has a syntax of lowercase name characters and *, whole strings only', () => {
    for (const ok of ['team/*', 'ab', 'a', 'docker.io/library/**', 'ci-*/app_1']) {
      expect(namePatternSyntax.test(ok), ok).toBe(true);
    }
    for (const bad of ['', 'Team/*', 'team/app!', '!team', 'a b', 'team:x']) {
      expect(namePatternSyntax.test(bad), bad).toBe(false);
    }
  });

  it('treats dots and dashes literally', () => {
    const exact = compileNamePattern('docker.io/library/alpine');
    expect(exact('docker.io/library/alpine')).toBe(true);
    expect(exact('dockerxio/library/alpine')).toBe(false);
    expect(compileNamePattern('ci-*/app')('ci-7/app')).toBe(true);
  });

  it('matches a list when any pattern does', () => {
    const patterns = ['a/*', 'b/**'].map(compileNamePattern);
    expect(matchesAny(patterns, 'b/x/y')).toBe(true);
    expect(matchesAny(patterns, 'a/x')).toBe(true);
    expect(matchesAny(patterns, 'c/x')).toBe(false);
    expect(matchesAny([], 'a/x')).toBe(false);
  });
});
