import { createHash } from 'node:crypto';

// Deterministic ids: the same evidence gives the same id in every detector instance, so the copies
// that two instances (or a restart that re-reads its window) produce collapse downstream.

export function decisionId(target: string, detector: string, windowStartMs: number): string {
  return `dec-${hash(`${target}|${detector}|${windowStartMs}`)}`;
}

export function detectionId(subject: string, detector: string, windowStartMs: number): string {
  return `det-${hash(`${subject}|${detector}|${windowStartMs}`)}`;
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 24);
}
