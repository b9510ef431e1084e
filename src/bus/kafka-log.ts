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

/**
 * Error answers of the broker that kafkajs' Connection logs at ERROR although they are part of
 * normal work, and that kafkajs itself handles (rejoins, retries, refreshes metadata): a group
 * rebalancing, a topic that exists, a leader or coordinator moving. They come through at info;
 * what kafkajs cannot get past reaches the caller as an error, logged there.
 */
const ROUTINE_ANSWERS = new Set([
  'The group is rebalancing, so a rejoin is needed',
  'Topic with this name already exists',
  'Topic creation errors',
  'This server is not the leader for that topic-partition',
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  "The coordinator is loading and hence can't process requests for this group",
  'The group coordinator is not available',
  'This is not the correct coordinator for this group',
]);

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
      let method = LEVELS[level] ?? 'warn';
      if (method === 'silent') return;
      if (
        method === 'error' &&
        namespace === 'Connection' &&
        typeof fields.error === 'string' &&
        ROUTINE_ANSWERS.has(fields.error)
      )
        method = 'info';
      log[method]({ kafkajs: namespace, ...fields }, String(message));
    };
}
