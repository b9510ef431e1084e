import { type Logger, pino } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  /** Component name carried as the `component` field of every line. */
  component?: string;
}

let root: Logger | undefined;

/** The process-wide logger: JSON lines on stderr, so stdout stays free for command output. */
export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const transport = opts.pretty ? { target: 'pino-pretty', options: { destination: 2 } } : undefined;
  root = transport
    ? pino({ level, transport })
    : pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
  return opts.component ? root.child({ component: opts.component }) : root;
}

export function logger(component?: string): Logger {
  root ??= pino({ level: 'info' }, pino.destination({ dest: 2, sync: false }));
  return component ? root.child({ component }) : root;
}
