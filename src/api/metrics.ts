import { Counter, Histogram } from 'prom-client';
import { registry } from '../metrics/registry.js';

export const requestsTotal = new Counter({
  name: 'mizugiwa_api_requests_total',
  help: 'HTTP requests answered, by route pattern, method and status code',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [registry],
});

export const requestSeconds = new Histogram({
  name: 'mizugiwa_api_request_seconds',
  help: 'time to answer a request, by route pattern',
  labelNames: ['route'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const operatorActionsTotal = new Counter({
  name: 'mizugiwa_api_operator_actions_total',
  help: 'operator changes published (decision add/lift, whitelist add/remove), by action and outcome',
  labelNames: ['action', 'outcome'] as const,
  registers: [registry],
});
