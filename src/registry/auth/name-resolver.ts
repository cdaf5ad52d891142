/**
 * @module registry/auth/name-resolver
 * How the HTTP layer learns whether a name is mirrored (and from a private
 * upstream) without knowing the proxy: cli/ hands in a resolver built from the
 * mirror's router. A registry without upstreams treats every name as local.
 */
import type { RepoName } from '../../oci/reference.js';
import type { NameClass } from './access-policy.js';

export interface NameResolver {
  /** Throws an OciError for a namespace that is not a configured upstream. */
  classify(name: RepoName, namespace?: string): NameClass;
  /**
   * Every class the name can take, under each namespace a client may add to it
   * (containerd's `?ns=` is not part of a token's scope): a token grants what
   * any of them allows, and each request is still checked against its own class.
   */
  classifyAll(name: RepoName): NameClass[];
}

export const localNames: NameResolver = {
  classify: (name) => ({ mirrored: false, private: false, storeName: name }),
  classifyAll: (name) => [{ mirrored: false, private: false, storeName: name }],
};
