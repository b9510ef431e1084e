import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Decision, Detection } from '../../src/decision/decision.js';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { DetectEngine } from '../../src/detect/engine.js';
import { generate, type Traffic, type TrafficSpec } from '../../src/traffic/generator.js';

export interface ScenarioResult {
  traffic: Traffic;
  detections: Detection[];
  /** Every decision record emitted, in order (new and extended). */
  decisions: Decision[];
  log: string[];
}

/** Generates the scenario's traffic and runs it through one in-process engine. */
export function runScenario(spec: TrafficSpec, config: unknown = {}): ScenarioResult {
  const traffic = generate(spec);
  const log: string[] = [];
  const sinkStream = new Writable({
    write(chunk, _enc, cb) {
      log.push(String(chunk));
      cb();
    },
  });
  const detections: Detection[] = [];
  const decisions: Decision[] = [];
  const engine = new DetectEngine(
    defaultDetectConfig(config),
    { detection: (d) => detections.push(d), decision: (d) => decisions.push(d) },
    { log: pino({ level: 'info' }, sinkStream) },
  );
  for (const ev of traffic.events) engine.onEvent(ev);
  engine.flush();
  return { traffic, detections, decisions, log };
}
