import { z } from 'zod';
import { parseNet } from './policy/whitelist.js';

// The `detect` section. Every threshold is here with its default and why; the defaults are tuned
// on the scenarios of the traffic generator (src/traffic/, test/detect/testdata/): a 50,000
// messages/hour fleet with typos, bouncing mailing lists and a 5,000 messages/hour legitimate bulk
// sender stays clean, while a single-IP harvest, a 300-bot slow harvest, a flood and a bounce
// storm are caught.

const reply4xx = z
  .string()
  .regex(
    /^4\d\d 4\.\d{1,3}\.\d{1,3} \S/,
    'must be a 4xx reply with an enhanced status code, e.g. "450 4.7.1 text"; decisions never reject',
  )
  .max(256);

const windowSchema = z
  .object({
    bucket_s: z
      .number()
      .int()
      .min(10)
      .max(3600)
      .default(300)
      .describe(
        'width of one per-source counter bucket (seconds); per-source windows are whole buckets, so a window is exact to within one bucket',
      ),
    buckets: z
      .number()
      .int()
      .min(2)
      .max(48)
      .default(12)
      .describe('buckets kept per source: bucket_s × buckets is the longest per-source window (default 1 h)'),
    allowed_lateness_s: z
      .number()
      .int()
      .min(0)
      .default(120)
      .describe(
        'how far an event may trail the newest event time of its partition and be on time; later ones are counted as late (metric) and still go into the buckets their window holds; fleet-wide baselines take a bucket in only once this much log time has passed it, so partitions this far apart still agree',
      ),
    host_skew_s: z
      .record(z.string(), z.number())
      .default({})
      .describe(
        'per-host clock correction in seconds, subtracted from that host\'s event times (a host whose clock runs 30 s fast: {"mx3": 30})',
      ),
    max_future_s: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe(
        'detect service only: an event stamped further than this ahead of the wall clock is clamped to it, so one bad clock cannot push the watermark into the future',
      ),
    align_partitions: z
      .boolean()
      .default(true)
      .describe(
        "detect service: hold back a partition that runs more than allowed_lateness_s ahead of the slowest busy one (this member's and other members'): keeps fleet-wide detectors right while a backlog is caught up, at about half the catch-up speed; live traffic never waits",
      ),
    max_sources: z
      .number()
      .int()
      .min(1000)
      .default(2_000_000)
      .describe(
        'most sources (client IPs) tracked at once; beyond it new sources are not tracked until idle ones expire (counted, logged)',
      ),
  })
  .strict();

const policySchema = z
  .object({
    whitelist: z
      .array(
        z
          .string()
          .min(1)
          .refine(isNet, 'not an IP address or CIDR prefix (e.g. 192.0.2.0/24, 2001:db8::/32)'),
      )
      .default(['127.0.0.0/8', '::1/128'])
      .describe(
        'addresses and CIDRs (own networks, partner relays) that never receive a decision; their detections are still reported',
      ),
    duration_s: z
      .number()
      .int()
      .min(60)
      .default(3600)
      .describe('life of a first decision (seconds); it expires by itself (expires_at is always set)'),
    repeat_factor: z
      .number()
      .min(1)
      .default(2)
      .describe('a repeat offender’s next decision lasts duration_s × repeat_factor^(offenses-1)'),
    max_duration_s: z
      .number()
      .int()
      .min(60)
      .default(86400)
      .describe('ceiling on a decision’s life, repeat offenders included'),
    repeat_memory_s: z
      .number()
      .int()
      .min(0)
      .default(7 * 86400)
      .describe('how long a target is remembered as an offender after its last decision'),
    extend_min_s: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe(
        'an active target detected again is extended (same decision id, later expires_at) only if that moves expiry by at least this much',
      ),
    max_active: z
      .number()
      .int()
      .min(1)
      .default(10000)
      .describe('safety valve: most decisions active at once; beyond it no new decision (loud log + metric)'),
    max_new_per_minute: z
      .number()
      .int()
      .min(1)
      .default(300)
      .describe('safety valve: most new decisions per minute of log time (loud log + metric)'),
    dry_run: z
      .boolean()
      .default(false)
      .describe('emit detections only, never decisions (for tuning a new installation)'),
  })
  .strict();

const dhaSourceSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('per client IP and per /24 and /64: unknown-recipient harvesting'),
    window_s: z
      .number()
      .int()
      .min(60)
      .default(3600)
      .describe(
        'window over which a source’s unknown and accepted recipients are counted (≤ bucket_s × buckets)',
      ),
    min_unknown: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe(
        'unknown-recipient rejects from one IP within the window before a decision (a harvest is decided at its 10th probe)',
      ),
    min_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        'share of unknown among all recipients (unknown + accepted) from that IP; keeps big senders with a few typos (1%) and mailing lists with dead subscribers clean',
      ),
    count_null_sender: z
      .boolean()
      .default(false)
      .describe(
        'count unknown recipients of null-sender (<>) mail too; off, so backscatter is left to bounce_storm, which only decides when configured',
      ),
    confidence: z.number().min(0).max(1).default(0.9).describe('confidence of a per-IP decision'),
    reply: reply4xx
      .default('450 4.7.1 Too many unknown recipients from your address; try again later')
      .describe('reply the MTA gives a tempfailed source'),
  })
  .strict();

const dhaPrefixSchema = z
  .object({
    enabled: z.boolean().default(true).describe('harvests spread over neighbouring addresses of one prefix'),
    v4_len: z.number().int().min(8).max(32).default(24).describe('IPv4 prefix length aggregated'),
    v6_len: z.number().int().min(16).max(128).default(64).describe('IPv6 prefix length aggregated'),
    window_s: z.number().int().min(60).default(3600).describe('window of the prefix counters'),
    min_unknown: z
      .number()
      .int()
      .min(1)
      .default(25)
      .describe('unknown-recipient rejects from the prefix within the window'),
    min_sources: z
      .number()
      .int()
      .min(2)
      .default(3)
      .describe('distinct addresses of the prefix taking part (one address alone is dha_source’s job)'),
    min_clean_share: z
      .number()
      .min(0)
      .max(1)
      .default(0.8)
      .describe(
        'share of those rejects coming from addresses that had no accepted message in the window (harvesters send no mail)',
      ),
    confidence: z.number().min(0).max(1).default(0.75).describe('confidence of a prefix decision'),
    reply: reply4xx
      .default('450 4.7.1 Too many unknown recipients from your network; try again later')
      .describe('reply for a tempfailed prefix'),
  })
  .strict();

const dhaDistributedSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('per recipient domain, fleet-wide: a slow harvest spread over many bots'),
    bucket_s: z.number().int().min(10).default(300).describe('width of a per-domain bucket'),
    window_s: z
      .number()
      .int()
      .min(60)
      .default(3600)
      .describe('window over which unknown recipients to the domain (and per source) are counted'),
    rate_window_s: z
      .number()
      .int()
      .min(60)
      .default(900)
      .describe(
        'recent span compared with the baseline to tell a harvest is under way (a slow harvest shows within it long before it fills window_s)',
      ),
    baseline_half_life_s: z
      .number()
      .int()
      .min(60)
      .default(6 * 3600)
      .describe('half-life of the domain’s unknown-recipient baseline (exponentially weighted, per bucket)'),
    warmup_s: z
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe('history needed before the baseline is trusted; until then cold_min_unknown applies'),
    factor: z
      .number()
      .min(1)
      .default(2)
      .describe(
        'a harvest is under way when the unknown count of the rate window exceeds factor × the baseline (a bucket folds into the baseline clipped at factor × baseline, so a ramping harvest cannot teach it)',
      ),
    min_unknown: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('and at least this many unknown recipients in the rate window (absolute floor)'),
    cold_min_unknown: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('floor (per rate window) while the baseline is still warming up'),
    source_min_unknown: z
      .number()
      .int()
      .min(1)
      .default(2)
      .describe(
        'during a harvest, a source with this many unknown recipients to the domain in the window takes part',
      ),
    source_max_accepted: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        '… provided it had at most this many accepted messages in the window (a harvester sends no DATA; a typo-prone sender does)',
      ),
    grace_s: z
      .number()
      .int()
      .min(0)
      .default(120)
      .describe(
        'a participating source is decided this long (log time) after its last probe, unless it sent accepted mail meanwhile (a mailing list whose dead subscribers are refused before its post is accepted)',
      ),
    max_sources_per_domain: z
      .number()
      .int()
      .min(100)
      .default(200_000)
      .describe('most sources remembered per domain (oldest dropped first)'),
    confidence: z
      .number()
      .min(0)
      .max(1)
      .default(0.6)
      .describe('confidence of a decision on a participating source (lower than dha_source)'),
    reply: reply4xx
      .default('450 4.7.1 Too many unknown recipients; try again later')
      .describe('reply for a tempfailed participant'),
  })
  .strict();

const botFlowSchema = z
  .object({
    enabled: z.boolean().default(true).describe('per source, fleet-wide: bot-like connection patterns'),
    window_s: z.number().int().min(60).default(600).describe('window of the flow counters (whole buckets)'),
    min_sessions: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe(
        'sessions (connections, or no-MAIL/lost/pregreet/protocol ends where no connect is logged) before judging',
      ),
    min_bad_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(0.8)
      .describe('share of sessions that were bad: no DATA, lost after RCPT, pregreet, protocol errors'),
    max_sessions: z
      .number()
      .int()
      .min(1)
      .default(3000)
      .describe(
        'sessions within the window that are a flood whatever they carry (a 5,000 msg/h sender makes ~830 per 10 min)',
      ),
    min_pregreet: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe('pregreet (talking before the banner) events; real MTAs never do it'),
    min_helos: z
      .number()
      .int()
      .min(2)
      .default(6)
      .describe('distinct HELO names from one IP within the window (estimated) together with min_sessions'),
    confidence: z.number().min(0).max(1).default(0.8).describe('confidence of a bot_flow decision'),
    reply: reply4xx
      .default('450 4.7.1 Too many connections from your address; try again later')
      .describe('reply for a tempfailed flow'),
  })
  .strict();

const bounceStormSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('fleet-wide: null-sender DSNs, double bounces and our own bounces far above baseline'),
    bucket_s: z.number().int().min(1).default(10).describe('width of a fleet bounce bucket'),
    window_s: z.number().int().min(10).default(60).describe('window compared with the baseline'),
    baseline_half_life_s: z.number().int().min(60).default(3600).describe('half-life of the baseline'),
    factor: z.number().min(1).default(8).describe('a storm is the window’s count above factor × baseline'),
    min_count: z
      .number()
      .int()
      .min(1)
      .default(60)
      .describe(
        'and above this absolute count per window (per counter: inbound DSNs, double bounces, own bounces)',
      ),
    decide_top_n: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('tempfail the top N sources of inbound DSNs during a storm; 0 = detections only (default)'),
    source_min: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe('a top source needs at least this many DSNs in the window to be decided'),
    confidence: z.number().min(0).max(1).default(0.5).describe('confidence of a decision on a storm source'),
    reply: reply4xx
      .default('450 4.7.1 Too many delivery status notifications from your address; try again later')
      .describe('reply for a tempfailed DSN source'),
  })
  .strict();

export const detectSchema = z
  .object({
    group_id: z
      .string()
      .min(1)
      .default('mizugiwa-detect')
      .describe('Kafka consumer group of the detect service'),
    internal_topic: z
      .string()
      .min(1)
      .default('mail.events.by-domain')
      .describe(
        'internal re-keyed topic between stage 1 (per source, keyed by IP) and stage 2 (keyed by recipient domain, prefix or fleet)',
      ),
    rebuild: z
      .boolean()
      .default(true)
      .describe(
        'on a partition this process had not been consuming (start, kill -9 of a peer): re-read the window before its committed offset to rebuild state',
      ),
    window: windowSchema.prefault({}),
    policy: policySchema.prefault({}),
    dha_source: dhaSourceSchema.prefault({}),
    dha_prefix: dhaPrefixSchema.prefault({}),
    dha_distributed: dhaDistributedSchema.prefault({}),
    bot_flow: botFlowSchema.prefault({}),
    bounce_storm: bounceStormSchema.prefault({}),
  })
  .strict()
  .superRefine((d, ctx) => {
    const span = d.window.bucket_s * d.window.buckets;
    for (const k of ['dha_source', 'bot_flow'] as const) {
      if (d[k].window_s > span) {
        ctx.addIssue({
          code: 'custom',
          path: [k, 'window_s'],
          message: `${d[k].window_s} s is longer than the per-source counters keep (window.bucket_s × window.buckets = ${span} s)`,
        });
      }
    }
    if (d.policy.max_duration_s < d.policy.duration_s) {
      ctx.addIssue({
        code: 'custom',
        path: ['policy', 'max_duration_s'],
        message: 'must be at least policy.duration_s',
      });
    }
  });

export type DetectConfig = z.infer<typeof detectSchema>;

/** The defaults, for tests and in-process users that have no config file. */
export function defaultDetectConfig(overrides: unknown = {}): DetectConfig {
  return detectSchema.parse(overrides);
}

function isNet(s: string): boolean {
  try {
    parseNet(s);
    return true;
  } catch {
    return false;
  }
}
