import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiToken } from './config.js';

// Operator identity: a configured token, sent as `Authorization: Bearer <token>`. The token's
// name becomes the origin of what the operator does (`operator:<name>`), in the decision, the
// audit trail and the logs. Tokens are compared as SHA-256 digests in constant time.

export interface Operator {
  name: string;
  write: boolean;
}

export type AuthResult =
  | { ok: true; operator: Operator | null }
  | { ok: false; status: 401 | 403; message: string };

export class TokenTable {
  private readonly digests: Array<{ digest: Buffer; operator: Operator }>;

  constructor(tokens: readonly ApiToken[]) {
    this.digests = tokens.map((t) => ({
      digest: sha256(t.token),
      operator: { name: t.name, write: t.write },
    }));
  }

  get size(): number {
    return this.digests.length;
  }

  /** The operator a header names; null without a header; undefined for an unknown token. */
  resolve(authorization: string | undefined): Operator | null | undefined {
    if (authorization === undefined || authorization === '') return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) return undefined;
    const d = sha256(m[1]!);
    let found: Operator | undefined;
    // Every digest is compared, so the time taken does not say which one matched.
    for (const t of this.digests) if (timingSafeEqual(t.digest, d)) found = t.operator;
    return found;
  }

  /** Checks a request: `need` is what the route requires. */
  check(authorization: string | undefined, need: 'none' | 'read' | 'write'): AuthResult {
    const op = this.resolve(authorization);
    if (op === undefined) {
      return { ok: false, status: 401, message: 'unknown token (send Authorization: Bearer <token>)' };
    }
    if (need === 'none') return { ok: true, operator: op };
    if (op === null) {
      if (need === 'read') return { ok: false, status: 401, message: 'this API needs a token for reads' };
      return {
        ok: false,
        status: this.digests.length === 0 ? 403 : 401,
        message:
          this.digests.length === 0
            ? 'writes are disabled: no api.tokens are configured'
            : 'a write needs an operator token (Authorization: Bearer <token>)',
      };
    }
    if (need === 'write' && !op.write) {
      return { ok: false, status: 403, message: `token ${op.name} is read-only` };
    }
    return { ok: true, operator: op };
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
