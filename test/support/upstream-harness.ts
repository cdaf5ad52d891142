/**
 * @module test/support/upstream-harness
 * Scripted upstreams and UpstreamRegistry clients that close themselves after
 * each test: `const { serve, connect } = upstreamHarness({ defaults })`.
 */
import { afterEach } from 'vitest';
import {
  UpstreamRegistry,
  type UpstreamConfig,
  type UpstreamRegistryOptions,
} from '../../src/upstream/upstream-registry.js';
import {
  startScriptedRegistry,
  type Script,
  type ScriptedRegistry,
  type ScriptedRegistryOptions,
} from './scripted-registry.js';

export interface UpstreamHarness {
  serve: (script: Script, options?: ScriptedRegistryOptions) => Promise<ScriptedRegistry>;
  connect: (
    server: { host: string; url: string },
    extra?: Partial<UpstreamConfig>,
    options?: UpstreamRegistryOptions,
  ) => UpstreamRegistry;
  /** Anything else the test must undo when it ends. */
  defer: (cleanup: () => Promise<void>) => void;
}

/** Registers an afterEach that closes, newest first, everything the test started. */
export function upstreamHarness(defaults: Partial<UpstreamConfig> = {}): UpstreamHarness {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    serve: async (script, options) => {
      const server = await startScriptedRegistry(script, options);
      cleanups.push(() => server.close());
      return server;
    },
    connect: (server, extra = {}, options = {}) => {
      const upstream = new UpstreamRegistry({ host: server.host, url: server.url, ...defaults, ...extra }, options);
      cleanups.push(() => upstream.close());
      return upstream;
    },
    defer: (cleanup) => {
      cleanups.push(cleanup);
    },
  };
}
