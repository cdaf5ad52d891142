/**
 * WharfMetrics' upstream counters (round 6 of the planted-bug audit, docs/mutation-testing.md): an
 * upstream error is no answer, a 5xx (500 included) or a 429, and nothing else; every exchange is
 * counted by its status, "none" when no answer came.
 */
import { describe, expect, it } from 'vitest';
import { WharfMetrics } from './metrics.js';

describe('WharfMetrics', () => {
  it('counts no answer, 500, 503 and 429 as upstream errors, and 404, 401 and 200 as none', async () => {
    const metrics = new WharfMetrics();
    const upstream = 'registry.example.test';
    for (const status of [undefined, 500, 503, 429, 404, 401, 200]) {
      metrics.observeUpstream({ upstream, method: 'GET', status, seconds: 0.01 });
    }
    const { body } = await metrics.render();
    expect(body).toMatch(/^wharf_upstream_errors_total\{upstream="registry\.example\.test"\} 4$/m);
    for (const shown of ['none', '500', '503', '429', '404', '401', '200']) {
      expect(body).toContain(
        `wharf_upstream_requests_total{upstream="${upstream}",method="GET",status="${shown}"} 1\n`,
      );
    }
  });
});
