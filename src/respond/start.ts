import type { Bus, Consumer } from '../bus/bus.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { Responder } from './agent.js';

/** The consumer group of this host's agent: respond.group_id, or respond-<host>. */
export function groupIdOf(cfg: Config): string {
  return cfg.respond.group_id ?? `respond-${cfg.host}`;
}

/**
 * A Responder wired from the configuration (map, state file, safety). Used by `mizugiwa respond`
 * (decisions from Kafka) and by `mizugiwa run` (decisions handed over in-process with apply()).
 * A bad whitelist entry is a ConfigError.
 */
export function responderFromConfig(cfg: Config, log?: Logger): Responder {
  try {
    return new Responder({ config: cfg.respond, dataDir: cfg.data_dir, ...(log ? { log } : {}) });
  } catch (err) {
    throw new ConfigError(`respond: ${(err as Error).message}`);
  }
}

/**
 * Feeds the compacted decisions topic into the responder from the beginning, with this host's own
 * consumer group. A batch is committed once its changes are in the state file (the map rebuild
 * may still be retrying: the state file holds them across a restart). A state file that cannot be
 * written fails the batch, so the bus delivers it again.
 */
export async function consumeDecisions(bus: Bus, responder: Responder, cfg: Config): Promise<Consumer> {
  const topic = cfg.bus.topics.decisions;
  await bus.ensureTopics([{ topic, compacted: true }]);
  const consumer = await bus.consumer({ groupId: groupIdOf(cfg), topics: [topic], fromBeginning: true });
  await consumer.run(async (messages) => {
    for (const m of messages) void responder.applyMessage({ key: m.key, value: m.value });
    await responder.flush();
  });
  return consumer;
}
