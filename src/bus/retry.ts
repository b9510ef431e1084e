// Backoff for batches whose handler threw: both buses deliver the batch again after this delay.

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
}

export function retryPolicy(opts: { initialMs?: number; maxMs?: number } = {}): RetryPolicy {
  const initialMs = opts.initialMs ?? 100;
  const maxMs = opts.maxMs ?? 30_000;
  if (!(initialMs > 0) || !(maxMs >= initialMs)) {
    throw new RangeError(
      `consumer retry: need 0 < initialMs <= maxMs, got initialMs=${initialMs} maxMs=${maxMs}`,
    );
  }
  return { initialMs, maxMs };
}

/** Delay before attempt `attempt + 1` (attempt counts failures, from 1): doubling, ±20% jitter, capped. */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.min(policy.maxMs, Math.round(base * (0.8 + Math.random() * 0.4)));
}
