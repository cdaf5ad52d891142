/**
 * @module upstream/logger
 * The logger the upstream layer writes to (oci/logger.ts, pino's shape), and a silent default.
 */
import type { Logger } from '../oci/logger.js';

export type { Logger };

const ignore = (): void => undefined;

/** Used when no logger is handed in: the library stays quiet unless asked to talk. */
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
