/**
 * @module oci/logger
 * The logging interface every layer takes (pino's shape), so that no layer but
 * cli/ needs to know which logger is behind it.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
