import { readFile } from 'node:fs/promises';
import { describeFailure, execCommand } from '../exec.js';
import { type AccessMap, MapError, MapFile, type MapFormat } from '../map-file.js';
import { octets, parseTarget, type Target } from '../target.js';

// Sendmail's access database (FEATURE(access_db)), built with makemap. At connect, ruleset
// check_relay looks up "Connect:" + the client address, then shorter leading-octet forms
// ("Connect:192.0.2", "Connect:192.0"), then the untagged forms. IPv6 clients are looked up as
// "Connect:IPv6:" + the address. So the db holds single addresses and IPv4 /24, /16, /8 prefixes.
// A line `Connect:192.0.2.7<TAB>ERROR:4.7.1:"450 4.7.1 text"` makes sendmail answer that at connect.
// makemap folds keys to lower case; the text (administrator's file) keeps its case.

export type SendmailMapType = 'hash' | 'btree';

export interface SendmailMapOptions {
  path: string;
  type: SendmailMapType;
  makemap: readonly string[];
  sendmailCf: string | null;
  timeoutMs: number;
}

export function sendmailKey(t: Target): { key: string } | { error: string } {
  if (t.family === 6) {
    if (t.prefix === 128) return { key: `Connect:IPv6:${t.addr.toString()}` };
    return { error: `the sendmail access db cannot hold the IPv6 prefix ${t.text} (addresses only)` };
  }
  if (t.prefix % 8 !== 0) {
    return {
      error: `the sendmail access db holds IPv4 addresses and /24, /16, /8 prefixes only, not ${t.text}`,
    };
  }
  return {
    key: `Connect:${octets(t)
      .slice(0, t.prefix / 8)
      .join('.')}`,
  };
}

/** "450 4.7.1 text" → ERROR:4.7.1:"450 4.7.1 text" (safety.ts keeps quotes and % out of the text). */
export function sendmailValue(reply: string): string {
  const dsn = reply.split(' ')[1] ?? '4.7.1';
  return `ERROR:${dsn}:"${reply}"`;
}

/** Address keys of the administrator's lines: "Connect:" or untagged addresses and prefixes. */
export function sendmailHandKeys(text: string): Target[] {
  const out: Target[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.length === 0 || line.startsWith('#') || /^\s/.test(line)) continue;
    let key = line.split(/\s/, 1)[0]!;
    const tag = /^([A-Za-z]+):(.*)$/.exec(key);
    if (tag && tag[1]!.toLowerCase() === 'connect') key = tag[2]!;
    else if (tag && tag[1]!.toLowerCase() !== 'ipv6') continue;
    if (/^ipv6:/i.test(key)) {
      const t = parseTarget(key.slice(5));
      if (t.ok) out.push(t.target);
      continue;
    }
    const parts = key.split('.');
    if (/^[0-9.]+$/.test(key) && parts.length <= 4) {
      const padded = [...parts, '0', '0', '0'].slice(0, 4).join('.');
      const t = parseTarget(parts.length === 4 ? key : `${padded}/${parts.length * 8}`);
      if (t.ok) out.push(t.target);
    }
  }
  return out;
}

export function createSendmailMap(o: SendmailMapOptions): AccessMap {
  const cf = o.sendmailCf ? ['-C', o.sendmailCf] : [];
  const format: MapFormat = {
    line: sendmailKey,
    value: (e) => sendmailValue(e.reply),
    separator: '\t',
    handKeys: sendmailHandKeys,
    dbSuffix: '.db',
    header: [`# Sendmail: FEATURE(\`access_db', \`${o.type} -T<TMPF> ${o.path}')`],
    async build(tmp) {
      const argv = [...o.makemap, ...cf, o.type, tmp];
      const text = await readFile(tmp, 'latin1');
      const r = await execCommand(argv, { input: text, timeoutMs: o.timeoutMs });
      if (r.code !== 0) throw new MapError(describeFailure(argv, r), 'build');
    },
    async verify(tmp, expected) {
      // makemap -u dumps the database just built: it must hold every entry with its value.
      const argv = [...o.makemap, '-u', ...cf, o.type, tmp];
      const r = await execCommand(argv, { timeoutMs: o.timeoutMs });
      if (r.code !== 0) throw new MapError(describeFailure(argv, r), 'verify');
      const got = new Map<string, string>();
      for (const line of r.stdout.split('\n')) {
        const tab = line.indexOf('\t');
        if (tab > 0) got.set(line.slice(0, tab).toLowerCase(), line.slice(tab + 1));
      }
      for (const [key, value] of expected) {
        const have = got.get(key.toLowerCase());
        if (have !== value) {
          throw new MapError(
            `${tmp}.db: ${key} holds ${JSON.stringify(have ?? null)}, expected ${JSON.stringify(value)}`,
            'verify',
          );
        }
      }
    },
  };
  return new MapFile(o.path, `sendmail ${o.type}:${o.path}`, format);
}
