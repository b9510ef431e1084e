// Endpoints of the real services that `scripts/services.sh up` starts for integration tests.
// The script writes var/services/services.json with an entry per service that answers.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const servicesFile = join(repoRoot, 'var', 'services', 'services.json');

export interface KafkaService {
  brokers: string[];
  version: string;
  log_dir: string;
}
export interface ClickHouseService {
  url: string;
  tcp: string;
  log_dir: string;
}
export interface PostfixService {
  smtp: string;
  maillog: string;
  /** the source text file of the check_client_access map; run `postmap hash:FILE` after changes */
  access_map: string;
  access_map_type: 'hash';
  config_dir: string;
  postmap: string;
  postfix: string;
}
export interface SendmailService {
  smtp: string;
  maillog: string;
  /** the source text file of FEATURE(access_db); run `makemap hash FILE < FILE` after changes */
  access_map: string;
  access_map_type: 'hash';
  cf: string;
  /** wrapper: the unpacked makemap with its libraries and `-C cf` */
  makemap: string;
  /** wrapper: the unpacked sendmail with its libraries, private namespace and `-C cf` */
  sendmail: string;
  lib_dir: string;
  env: Record<string, string>;
}
export interface Services {
  kafka: KafkaService;
  clickhouse: ClickHouseService;
  postfix: PostfixService;
  sendmail: SendmailService;
}
export type ServiceName = keyof Services;

/** Reads var/services/services.json; throws naming the command to run when a service is missing. */
export function loadServices(): Partial<Services>;
export function loadServices<K extends ServiceName>(...required: K[]): Partial<Services> & Pick<Services, K>;
export function loadServices(...required: ServiceName[]): Partial<Services> {
  let parsed: Partial<Services>;
  try {
    parsed = JSON.parse(readFileSync(servicesFile, 'utf8')) as Partial<Services>;
  } catch (err) {
    const what =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `is unreadable (${err})`;
    throw new Error(`${servicesFile} ${what}: run scripts/services.sh up ${required.join(' ')}`.trimEnd());
  }
  const missing = required.filter((name) => parsed[name] === undefined);
  if (missing.length > 0) {
    throw new Error(
      `service${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not up (not in ${servicesFile}): ` +
        `run scripts/services.sh up ${missing.join(' ')}`,
    );
  }
  return parsed;
}

/** Splits "127.0.0.1:2525" into host and port. */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}
