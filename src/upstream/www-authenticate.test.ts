import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate, pickChallenge } from './www-authenticate.js';

describe('parseWwwAuthenticate', () => {
  it("reads Docker Hub's Bearer challenge with a comma inside the quoted scope", () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"';
    expect(parseWwwAuthenticate(header)).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:samalba/my-app:pull,push',
        },
      },
    ]);
  });

  it('splits several challenges on one line and across lines', () => {
    const challenges = parseWwwAuthenticate(['Basic realm="quay.io", Bearer realm="https://quay.io/v2/auth"', 'Foo']);
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'foo']);
    expect(challenges[1]?.params['realm']).toBe('https://quay.io/v2/auth');
    expect(pickChallenge(challenges)?.scheme).toBe('bearer');
  });

  it('unescapes quoted-pairs, tolerates spaces around = and unquoted values', () => {
    const [challenge] = parseWwwAuthenticate('BASIC Realm = "a \\"b\\", c" , charset=UTF-8');
    expect(challenge).toEqual({ scheme: 'basic', params: { realm: 'a "b", c', charset: 'UTF-8' } });
  });

  it('ends an unquoted value at the comma before the next parameter', () => {
    // Round 11d: a bare value read up to the next space only swallowed ",service=…" into the realm.
    expect(parseWwwAuthenticate('Bearer realm=https://auth.example.test/token,service=registry.example.test')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example.test/token', service: 'registry.example.test' } },
    ]);
  });

  it('survives malformed input without looping', () => {
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([
      { scheme: 'bearer', params: { realm: 'unterminated' } },
    ]);
    expect(parseWwwAuthenticate('=,;"')).toEqual([]);
    expect(pickChallenge(parseWwwAuthenticate('Negotiate'))).toBeUndefined();
  });
});
