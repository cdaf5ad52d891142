import { describe, expect, it } from 'vitest';
import { compileNamePattern } from './name-pattern.js';

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

  it('treats dots and dashes literally', () => {
    const exact = compileNamePattern('docker.io/library/alpine');
    expect(exact('docker.io/library/alpine')).toBe(true);
    expect(exact('dockerxio/library/alpine')).toBe(false);
    expect(compileNamePattern('ci-*/app')('ci-7/app')).toBe(true);
  });
});
