import { describeFailure, execCommand } from '../exec.js';
import { type AccessMap, MapError, MapFile, type MapFormat } from '../map-file.js';
import { octets, parseTarget, parseTargetLoose, type Target } from '../target.js';

// A Postfix check_client_access table (access(5)):
// - hash:/lmdb: (postmap builds FILE.db / FILE.lmdb; smtpd notices a replaced database by itself
//   and restarts at its next connection). Postfix looks a client up as the full address, then for
//   IPv4 as its leading octets ("192.0.2", "192.0", "192"): so these tables hold single addresses
//   and IPv4 /24, /16, /8 prefixes, nothing else. IPv6 prefixes and other widths need cidr:.
// - cidr: (cidr_table(5)): any prefix; the file itself is the table, read when an smtpd process
//   starts, so the agent runs the reload command after replacing it. First match wins: the
//   agent's section comes after the administrator's lines, and overlaps with them are refused.
// Lines are `KEY  450 4.7.1 text`.

export type PostfixMapType = 'hash' | 'lmdb' | 'cidr';

export interface PostfixMapOptions {
  path: string;
  type: PostfixMapType;
  postmap: readonly string[];
  reload: readonly string[] | null;
  timeoutMs: number;
}

export function postfixKey(t: Target, type: PostfixMapType): { key: string } | { error: string } {
  if (type === 'cidr') return { key: t.prefix === (t.family === 4 ? 32 : 128) ? t.addr.toString() : t.text };
  if (t.family === 6) {
    if (t.prefix === 128) return { key: t.addr.toString() };
    return {
      error: `a ${type}: table cannot hold the IPv6 prefix ${t.text}; use respond.map_type cidr for prefixes`,
    };
  }
  if (t.prefix % 8 !== 0) {
    return {
      error: `a ${type}: table holds IPv4 addresses and /24, /16, /8 prefixes only, not ${t.text}; use respond.map_type cidr`,
    };
  }
  return {
    key: octets(t)
      .slice(0, t.prefix / 8)
      .join('.'),
  };
}

/** Address keys in the administrator's lines of a Postfix table (hostnames and domains are ignored). */
export function postfixHandKeys(text: string, type: PostfixMapType): Target[] {
  const out: Target[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    // Comments, blank lines and continuation lines (leading white space) carry no key.
    if (line.length === 0 || /^\s/.test(line) || line.startsWith('#')) continue;
    let key = line.split(/\s/, 1)[0]!;
    if (type === 'cidr') {
      if (/^(if|endif)$/i.test(key)) continue;
      key = key.replace(/^\[([^\]]+)\]/, '$1');
      const t = parseTargetLoose(key);
      if (t.ok) out.push(t.target);
      continue;
    }
    const parts = key.split('.');
    if (/^[0-9.]+$/.test(key) && parts.length >= 1 && parts.length <= 4) {
      const padded = [...parts, '0', '0', '0'].slice(0, 4).join('.');
      const t = parseTarget(parts.length === 4 ? key : `${padded}/${parts.length * 8}`);
      if (t.ok) out.push(t.target);
    } else if (key.includes(':')) {
      const t = parseTarget(key.replace(/^ipv6:/i, '').replace(/^\[(.*)\]$/, '$1'));
      if (t.ok) out.push(t.target);
    }
  }
  return out;
}

export function createPostfixMap(o: PostfixMapOptions): AccessMap {
  const tableOf = (file: string) => `${o.type}:${file}`;
  const format: MapFormat = {
    line: (t) => postfixKey(t, o.type),
    value: (e) => e.reply,
    separator: '  ',
    handKeys: (text) => postfixHandKeys(text, o.type),
    dbSuffix: o.type === 'hash' ? '.db' : o.type === 'lmdb' ? '.lmdb' : null,
    header: [`# Postfix: smtpd_client_restrictions = check_client_access ${tableOf(o.path)}, ...`],
    async build(tmp) {
      const argv = [...o.postmap, tableOf(tmp)];
      const r = await execCommand(argv, { timeoutMs: o.timeoutMs });
      if (r.code !== 0) throw new MapError(describeFailure(argv, r), 'build');
    },
    async verify(tmp, expected) {
      // Every entry written must answer with its reply.
      let keys = [...expected.keys()];
      if (o.type === 'cidr') keys = keys.map((k) => k.replace(/\/\d+$/, ''));
      const argv = [...o.postmap, '-q', '-', tableOf(tmp)];
      if (keys.length === 0) {
        // Nothing of ours to look up: the table must still open (exit 1 without a fatal = not found).
        const r = await execCommand(argv, { input: '0.0.0.0\n', timeoutMs: o.timeoutMs });
        if (r.code === 0 || (r.code === 1 && !/fatal:/.test(r.stderr))) return;
        throw new MapError(describeFailure(argv, r), 'verify');
      }
      const r = await execCommand(argv, {
        input: keys.map((k) => `${k}\n`).join(''),
        timeoutMs: o.timeoutMs,
      });
      if (r.code !== 0) throw new MapError(describeFailure(argv, r), 'verify');
      const got = new Map<string, string>();
      for (const line of r.stdout.split('\n')) {
        const tab = line.indexOf('\t');
        if (tab > 0) got.set(line.slice(0, tab).toLowerCase(), line.slice(tab + 1));
      }
      const want = [...expected.entries()];
      for (let i = 0; i < want.length; i++) {
        const [, value] = want[i]!;
        const asked = keys[i]!.toLowerCase();
        if (got.get(asked) !== value) {
          throw new MapError(
            `${tableOf(tmp)}: ${asked} answers ${JSON.stringify(got.get(asked) ?? null)}, expected ${JSON.stringify(value)}`,
            'verify',
          );
        }
      }
    },
  };
  if (o.type === 'cidr' && o.reload) {
    const reload = o.reload;
    format.afterInstall = async () => {
      const r = await execCommand(reload, { timeoutMs: o.timeoutMs });
      if (r.code !== 0) throw new MapError(describeFailure(reload, r), 'reload');
    };
  }
  return new MapFile(o.path, `postfix ${tableOf(o.path)}`, format);
}
