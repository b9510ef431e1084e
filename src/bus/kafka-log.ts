import type { logCreator } from 'kafkajs';
import type { Logger } from '../log/logger.js';
import kafkajs from './kafkajs.js';

const { logLevel } = kafkajs;

const LEVELS = {
  [logLevel.NOTHING]: 'silent',
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
} as const;

/** Routes kafkajs' own log lines into pino (kafkajs is set to WARN, so only trouble shows). */
export function kafkaLogCreator(log: Logger): logCreator {
  return () =>
    ({ namespace, level, log: entry }) => {
      const {
        message,
        timestamp: _ts,
        logger: _name,
        ...fields
      } = entry as typeof entry & Record<string, unknown>;
      const method = LEVELS[level] ?? 'warn';
      if (method === 'silent') return;
      log[method]({ kafkajs: namespace, ...fields }, String(message));
    };
}
