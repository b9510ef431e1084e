import { ConfigError } from '../config/load.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A mistake in how mizugiwa was called (bad flag value, bad input file): printed as one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Wraps a command action: configuration and usage errors become one line on stderr and exit 2. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof UsageError) {
        process.stderr.write(`mizugiwa: ${err.message}\n`);
        process.exit(EXIT_USAGE);
      }
      process.stderr.write(`mizugiwa: ${(err as Error).stack ?? err}\n`);
      process.exit(EXIT_FAILURE);
    }
  };
}
