// Errors route handlers throw; the error handler in server.ts turns each into its status code.

/** The request asks for something malformed or contradictory: 400 with this message. */
export class InputError extends Error {
  override name = 'InputError';
}

/** Something the route needs is not configured or not reachable: 503 with this message. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}
