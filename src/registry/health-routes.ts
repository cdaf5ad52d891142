/**
 * @module registry/health-routes
 * What an orchestrator and a monitoring system ask: `/healthz` (the process
 * answers: always 200), `/readyz` (the index answers and the data directory
 * takes a write: else 503 with the reason) and `/metrics` (Prometheus text).
 *
 * Who may read /metrics (docs/decisions/0007-observability.md): everyone when
 * `metrics.public` is set or when no users are configured (the registry is open
 * anyway); otherwise clients on a loopback address and signed-in admins (admin
 * on `**`). The numbers name upstreams and the traffic's shape, not content.
 */
import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { OciError } from '../oci/errors.js';
import type { ClientAuth } from './auth/client-auth.js';
import { writeReply } from './http.js';

export interface HealthChecks {
  /** The Prometheus exposition; absent: no /metrics. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** undefined when ready, else why not; absent: /readyz answers like /healthz. */
  notReady?: () => Promise<string | undefined>;
  /** Anyone may read /metrics (metrics.public). */
  metricsPublic?: boolean;
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

const plain = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' };

export function addHealthRoutes(app: Hono<{ Bindings: HttpBindings }>, checks: HealthChecks, auth: ClientAuth): void {
  app.get('/healthz', (c) => {
    writeReply(c.env.outgoing, { status: 200, headers: plain, body: 'ok\n' });
    return RESPONSE_ALREADY_SENT;
  });
  app.get('/readyz', async (c) => {
    const reason = await checks.notReady?.();
    if (reason !== undefined) throw new OciError('UNAVAILABLE', `not ready: ${reason}`, { status: 503 });
    writeReply(c.env.outgoing, { status: 200, headers: plain, body: 'ready\n' });
    return RESPONSE_ALREADY_SENT;
  });
  const metrics = checks.metrics;
  if (metrics === undefined) return;
  app.get('/metrics', async (c) => {
    const { incoming, outgoing } = c.env;
    if (checks.metricsPublic !== true && auth.enabled && !isLoopback(incoming.socket.remoteAddress)) {
      await requireAdmin(auth, incoming.headers.authorization, incoming.socket.remoteAddress);
    }
    const { contentType, body } = await metrics();
    writeReply(outgoing, { status: 200, headers: { 'Content-Type': contentType, 'Cache-Control': 'no-store' }, body });
    return RESPONSE_ALREADY_SENT;
  });
}

/** Basic (what Prometheus' basic_auth sends) or a bearer token of an admin; else 401 or 403. */
async function requireAdmin(
  auth: ClientAuth,
  authorization: string | undefined,
  address: string | undefined,
): Promise<void> {
  const challenge = { 'WWW-Authenticate': 'Basic realm="wharf metrics"' };
  if (authorization === undefined) {
    throw new OciError('UNAUTHORIZED', 'metrics are for admins: sign in', { headers: challenge });
  }
  const identity = await auth.identify(authorization, () => address ?? 'unknown', { host: undefined, secure: false });
  // Admin over every name: a rule granting admin on `**` (the storeName matched is the empty name).
  if (!auth.rights(identity, { mirrored: false, private: false, storeName: '' }).has('admin')) {
    throw new OciError('DENIED', 'metrics are for admins');
  }
}
