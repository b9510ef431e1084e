import { z } from 'zod';
import { parseTarget } from './target.js';

// The `respond` section: the agent that turns decisions into entries of the MTA's access map.
// Commands are argv lists (no shell): `[postmap, -c, /etc/postfix-out]` works, `postmap -c x` as one
// string does not.

const argv = z.array(z.string().min(1)).min(1);

export const respondSafetySchema = z
  .object({
    whitelist: z
      .array(
        z.string().superRefine((v, ctx) => {
          const t = parseTarget(v);
          if (!t.ok) ctx.addIssue({ code: 'custom', message: t.error });
        }),
      )
      .default([])
      .describe(
        'addresses and CIDR prefixes never to tempfail (own networks, partner relays); a decision whose target overlaps one is refused',
      ),
    min_prefix_v4: z
      .number()
      .int()
      .min(1)
      .max(32)
      .default(16)
      .describe(
        'widest IPv4 prefix that may be tempfailed: a /N with N below this is refused (0.0.0.0/0 always is)',
      ),
    min_prefix_v6: z
      .number()
      .int()
      .min(1)
      .max(128)
      .default(48)
      .describe(
        'widest IPv6 prefix that may be tempfailed: a /N with N below this is refused (::/0 always is)',
      ),
    max_entries: z
      .number()
      .int()
      .min(1)
      .default(10000)
      .describe('most entries the agent keeps in force; a decision for a new target beyond it is refused'),
    max_ttl_s: z
      .number()
      .int()
      .min(1)
      .default(86400)
      .describe(
        'longest life of an entry in seconds: a later expires_at is clamped to min(created_at or updated_at, now) + max_ttl_s',
      ),
    allow_loopback: z
      .boolean()
      .default(false)
      .describe('accept decisions for loopback targets (127.0.0.0/8, ::1); only test setups want this'),
    protect_own_addresses: z
      .boolean()
      .default(true)
      .describe("refuse decisions whose target covers one of this host's own interface addresses"),
    max_reply_length: z
      .number()
      .int()
      .min(16)
      .max(400)
      .default(256)
      .describe('longest reply text accepted (characters), the SMTP code included'),
  })
  .strict();

export const respondSchema = z
  .object({
    mta: z
      .enum(['postfix', 'sendmail'])
      .default('postfix')
      .describe(
        'which access map to maintain: a Postfix check_client_access table or the Sendmail access db',
      ),
    map_path: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'text file of the access map (the database is built beside it); null: /etc/postfix/mizugiwa_access (postfix) or /etc/mail/access (sendmail)',
      ),
    map_type: z
      .enum(['hash', 'lmdb', 'cidr', 'btree'])
      .default('hash')
      .describe(
        'postfix: hash or lmdb (built with postmap, noticed by Postfix itself) or cidr (plain file, needs the reload command); sendmail: hash or btree (makemap)',
      ),
    postmap: argv.default(['postmap']).describe('postfix: the postmap command (argv list)'),
    reload: argv
      .nullable()
      .default(['postfix', 'reload'])
      .describe('postfix cidr: command run after the table changed (argv list); null: none'),
    makemap: argv.default(['makemap']).describe('sendmail: the makemap command (argv list)'),
    sendmail_cf: z
      .string()
      .nullable()
      .default(null)
      .describe('sendmail: sendmail.cf passed to makemap as -C FILE (null: makemap default)'),
    state_path: z
      .string()
      .nullable()
      .default(null)
      .describe(
        'local state file of the agent (entries in force, atomic writes); null: <data_dir>/respond/state.json',
      ),
    group_id: z
      .string()
      .nullable()
      .default(null)
      .describe('Kafka consumer group of this agent; null: respond-<host> (one group per host)'),
    dry_run: z
      .boolean()
      .default(false)
      .describe('only log what would be written; the map, the state file and the MTA are left alone'),
    coalesce_ms: z
      .number()
      .int()
      .min(0)
      .max(5000)
      .default(50)
      .describe('decisions arriving within this many ms are written in one map rebuild'),
    command_timeout_ms: z
      .number()
      .int()
      .positive()
      .default(30000)
      .describe('postmap/makemap/reload running longer are killed and the rebuild counts as failed'),
    retry_max_ms: z
      .number()
      .int()
      .positive()
      .default(30000)
      .describe('after a failed rebuild the agent retries, doubling from 1 s up to this'),
    safety: respondSafetySchema
      .prefault({})
      .describe(
        'what the agent refuses to write, whatever a decision says (each refusal logged and counted)',
      ),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.mta === 'sendmail' && (v.map_type === 'lmdb' || v.map_type === 'cidr')) {
      ctx.addIssue({
        code: 'custom',
        path: ['map_type'],
        message: `sendmail's access db is built by makemap: use hash or btree, not ${v.map_type}`,
      });
    }
    if (v.mta === 'postfix' && v.map_type === 'btree') {
      ctx.addIssue({
        code: 'custom',
        path: ['map_type'],
        message: 'postfix: use hash, lmdb or cidr (btree tables are not supported by the agent)',
      });
    }
  });

export type RespondConfig = z.infer<typeof respondSchema>;
export type RespondSafetyConfig = z.infer<typeof respondSafetySchema>;

export const DEFAULT_MAP_PATH = {
  postfix: '/etc/postfix/mizugiwa_access',
  sendmail: '/etc/mail/access',
} as const;
