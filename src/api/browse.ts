import type { ClickHouse } from '../clickhouse/client.js';
import { eventFromRow, type StoredEvent } from '../store/queries.js';
import { utcTime } from '../store/rows.js';

// Reading the log of a time window: one server's lines (`host=`), lines holding a text
// (`contains=`, case-insensitive, on the raw line), or both: the `grep` over every server that
// centralized logs replace. These have no skip index to go by, so the window is bounded
// (api.max_scan_window) and the scan reads only the day partitions of the window.

export interface BrowseOptions {
  from: string;
  to: string;
  host?: string;
  contains?: string;
  limit: number;
}

export async function browseEvents(ch: ClickHouse, o: BrowseOptions): Promise<StoredEvent[]> {
  const conds = ["ts >= {from:DateTime64(6, 'UTC')}", "ts <= {to:DateTime64(6, 'UTC')}"];
  if (o.host !== undefined) conds.push('host = {host:String}');
  if (o.contains !== undefined) conds.push('positionCaseInsensitiveUTF8(raw, {contains:String}) > 0');
  // SELECT * leaves out the MATERIALIZED recipient_domain; eventFromRow takes the rest as is.
  const rs = await ch.client.query({
    query: `SELECT * FROM ${ch.database}.mail_events WHERE ${conds.join(' AND ')}
            ORDER BY ts DESC, id LIMIT 1 BY id LIMIT {limit:UInt32}`,
    query_params: {
      from: utcTime(o.from, 6, 'from'),
      to: utcTime(o.to, 6, 'to'),
      host: o.host ?? '',
      contains: o.contains ?? '',
      limit: o.limit,
    },
    format: 'JSONEachRow',
  });
  return (await rs.json<Record<string, unknown>>()).map(eventFromRow);
}
