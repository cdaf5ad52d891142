/**
 * @module upstream/upstream-config
 * The shapes UpstreamRegistry is built from and hands out: how to reach and authenticate to one
 * upstream, and a blob answer whose body the caller streams or cancels.
 */
import type { Dispatcher } from 'undici';
import type { AddressClass } from './address-class.js';
import type { Resolver } from './address-guard.js';
import type { Environment } from './docker-config.js';
import type { Logger } from './logger.js';
import type { UpstreamTimeouts } from './timeouts.js';

export interface UpstreamConfig {
  /** The registry host as clients name it: 'docker.io', 'ghcr.io', '127.0.0.1:6000'. */
  host: string;
  /** Where to reach it: 'https://registry-1.docker.io', 'http://127.0.0.1:6000'. */
  url: string;
  username?: string;
  password?: string;
  /** A registry token sent as `Authorization: Bearer` on every request. */
  token?: string;
  /** Also look up credentials in $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
  useDockerConfig?: boolean;
  timeouts?: Partial<UpstreamTimeouts>;
  /**
   * Sent as `?ns=` on every registry request, with the names unchanged (the upstream is a mirror
   * that serves several registries at one URL, as containerd's hosts.toml mirrors are; ADR 0013).
   */
  namespace?: string;
}

export interface UpstreamRegistryOptions {
  logger?: Logger;
  /** Used instead of an Agent of our own (which then is the caller's to close). */
  dispatcher?: Dispatcher;
  /** DOCKER_CONFIG, HOME and the PATH credential helpers are found on; cli/ hands in the process environment. */
  env?: Environment;
  /** Milliseconds since the epoch, for token expiry; tests move it forward instead of sleeping. */
  now?: () => number;
  /**
   * The network the upstream is taken to be on, which decides where its redirects and token realms
   * may send wharf (see address-guard.ts). By default its address says: an IP literal's class,
   * loopback for localhost, what its name resolves to. Tests set 'public' to give an upstream on
   * loopback the guard a public one gets.
   */
  network?: AddressClass;
  /**
   * What the address guard resolves names with (every name the Agent dials goes through it);
   * dns.lookup when absent. Tests answer from a table, so a made-up name reaches loopback and no
   * DNS query leaves the machine. Not a setting: nothing in the configuration sets it.
   */
  resolver?: Resolver;
  /** Told of every exchange with the upstream, for metrics (cli/ wires it to Prometheus). */
  observe?: UpstreamObserver;
}

/** One exchange with an upstream (its token service and redirect hops included). */
export interface UpstreamExchange {
  /** The configured registry host, whichever host answered (a CDN after a redirect): one label per upstream. */
  upstream: string;
  method: string;
  /** undefined when no answer came at all (refused, reset, timed out). */
  status: number | undefined;
  /** From sending the request to its response headers, or to the failure. */
  seconds: number;
}

export type UpstreamObserver = (exchange: UpstreamExchange) => void;

export interface UpstreamBlob {
  /** Content-Length of the upstream answer. */
  size: number | undefined;
  /** Raw bytes as they arrive, not verified here; transport failures throw UNAVAILABLE. */
  body: AsyncIterable<Uint8Array>;
  /** Releases the connection when the body will not be read. */
  cancel(): Promise<void>;
}
