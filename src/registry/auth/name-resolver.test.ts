import { describe, expect, it } from 'vitest';
import type { RepoName } from '../../oci/reference.js';
import { localNames } from './name-resolver.js';

describe('localNames', () => {
  it('treats every name as local, public and stored under itself', () => {
    const name = 'team/app' as RepoName;
    expect(localNames.classify(name)).toEqual({ mirrored: false, private: false, storeName: 'team/app' });
    expect(localNames.classifyAll(name)).toEqual([{ mirrored: false, private: false, storeName: 'team/app' }]);
  });
});
