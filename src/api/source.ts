import type { ClickHouse } from '../clickhouse/client.js';
import { ipRange } from '../store/ip-range.js';
import { isoTime } from '../store/queries.js';
import { utcTime } from '../store/rows.js';

// One client address at a glance, the first question in an incident ("who is 198.51.100.7?"):
// its traffic in a window from the per-minute source rollup, and the detections about it or
// about a prefix holding it. Decisions and the whitelist are added by the route. A subject that is
// not a valid CIDR is never passed to isIPAddressInRange (it would fail the whole query).

export interface SourceActivity {
  events: number;
  connects: number;
  messages: number;
  rejects: number;
  user_unknown: number;
  auth_failures: number;
  null_sender: number;
  first_seen: string | null;
  last_seen: string | null;
}

export interface SourceDetection {
  id: string;
  ts: string;
  detector: string;
  subject: string;
  reason: string;
  decision_id: string;
  no_decision: string;
}

export async function sourceActivity(
  ch: ClickHouse,
  ip: string,
  from: string,
  to: string,
): Promise<SourceActivity> {
  const rs = await ch.client.query({
    query: `SELECT sum(events) AS ev, sum(connects) AS co, sum(messages) AS me, sum(rejects) AS re,
              sum(user_unknown) AS uu, sum(auth_failures) AS af, sum(null_sender) AS ns,
              min(minute) AS first, max(minute) AS last, uniqExact(minute) AS minutes
            FROM ${ch.database}.rollup_source_1m
            WHERE client_ip = toIPv6({ip:String})
              AND minute >= toStartOfMinute({from:DateTime('UTC')}) AND minute <= {to:DateTime('UTC')}`,
    query_params: { ip: ipRange(ip).low, from: utcTime(from, 0, 'from'), to: utcTime(to, 0, 'to') },
    format: 'JSONEachRow',
  });
  const [r] = await rs.json<Record<string, string | number>>();
  const seen = r !== undefined && Number(r.minutes) > 0;
  return {
    events: Number(r?.ev ?? 0),
    connects: Number(r?.co ?? 0),
    messages: Number(r?.me ?? 0),
    rejects: Number(r?.re ?? 0),
    user_unknown: Number(r?.uu ?? 0),
    auth_failures: Number(r?.af ?? 0),
    null_sender: Number(r?.ns ?? 0),
    first_seen: seen ? isoTime(r!.first) : null,
    last_seen: seen ? isoTime(r!.last) : null,
  };
}

export async function sourceDetections(
  ch: ClickHouse,
  ip: string,
  from: string,
  to: string,
  limit: number,
): Promise<SourceDetection[]> {
  const rs = await ch.client.query({
    query: `SELECT id, ts, detector, subject, reason, decision_id, no_decision
            FROM ${ch.database}.detections
            WHERE ts >= {from:DateTime64(3, 'UTC')} AND ts <= {to:DateTime64(3, 'UTC')}
              AND subject_kind IN ('ip', 'prefix')
              AND (subject = {ip:String} OR isIPAddressInRange({ip:String}, if(
                    (isIPv4String(substringIndex(subject, '/', 1)) AND toUInt8OrDefault(substringIndex(subject, '/', -1), 255) <= 32)
                    OR (isIPv6String(substringIndex(subject, '/', 1)) AND toUInt8OrDefault(substringIndex(subject, '/', -1), 255) <= 128),
                    subject, '255.255.255.255/32')))
            ORDER BY ts DESC LIMIT 1 BY id LIMIT {limit:UInt32}`,
    query_params: { ip, from: utcTime(from, 3, 'from'), to: utcTime(to, 3, 'to'), limit },
    format: 'JSONEachRow',
  });
  return (await rs.json<Record<string, string>>()).map((r) => ({
    id: r.id!,
    ts: isoTime(r.ts),
    detector: r.detector!,
    subject: r.subject!,
    reason: r.reason!,
    decision_id: r.decision_id!,
    no_decision: r.no_decision!,
  }));
}
