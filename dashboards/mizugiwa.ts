import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

// The mizugiwa dashboards as code (@grafana/grafana-foundation-sdk). `npm run dashboards` writes
// them to dashboards/*.json for provisioning or import. Data comes from two datasources chosen
// by variables: ClickHouse through the Grafana ClickHouse plugin (grafana-clickhouse-datasource;
// SQL over the per-minute rollups and the decisions audit table of schemas/clickhouse/) and
// Prometheus (the mizugiwa_* metrics every process exports).
// Every SQL here runs in test/dashboards/ against the real schema, macros substituted.

export const CLICKHOUSE_PLUGIN = 'grafana-clickhouse-datasource';
/** A Grafana template variable reference: ${name} or ${name:format}. */
const gv = (name: string) => `\${${name}}`;
const CH: common.DataSourceRef = { type: CLICKHOUSE_PLUGIN, uid: gv('ch_datasource') };
const PROM: common.DataSourceRef = { type: 'prometheus', uid: gv('prom_datasource') };
const DB = gv('database');
const HOSTS = `host IN (${gv('host:singlequote')})`;

/** A ClickHouse plugin query (v4 query model: SQL editor, time series or table format). */
class ClickHouseQuery implements cog.Builder<cog.Dataquery> {
  constructor(
    private readonly refId: string,
    private readonly sql: string,
    private readonly kind: 'time_series' | 'table',
  ) {}

  build(): cog.Dataquery {
    const q = {
      datasource: CH,
      refId: this.refId,
      editorType: 'sql',
      queryType: this.kind === 'time_series' ? 'timeseries' : 'table',
      // The plugin's Format enum: 0 time series, 1 table.
      format: this.kind === 'time_series' ? 0 : 1,
      rawSql: this.sql.trim().replace(/\n\s+/g, '\n  '),
    };
    return q as unknown as cog.Dataquery;
  }
}

const sqlSeries = (sql: string, refId = 'A') => new ClickHouseQuery(refId, sql, 'time_series');
const sqlTable = (sql: string, refId = 'A') => new ClickHouseQuery(refId, sql, 'table');
const promql = (expr: string, legend: string, refId = 'A') =>
  new prometheus.DataqueryBuilder().datasource(PROM).expr(expr).legendFormat(legend).refId(refId).range();

/** ::ffff:a.b.c.d as a.b.c.d: how MTAs log IPv4 clients. */
const ipText = (col: string) => `replaceRegexpOne(IPv6NumToString(${col}), '^::ffff:', '')`;

// The decisions in force now: the latest change of each decision (ties: lifted > expired > active)
// is active and now lies between created_at and expires_at (as src/store/queries.ts decisionsInForce).
const DECISIONS_IN_FORCE = `
  SELECT id, argMax(target, v) AS target, argMax(detector, v) AS detector, argMax(origin, v) AS origin,
         argMax(reason, v) AS reason, argMax(reply, v) AS reply, argMax(offense, v) AS offense,
         argMax(created_at, v) AS created, argMax(expires_at, v) AS expires, argMax(state, v) AS st
  FROM (SELECT *, (changed_at, indexOf(['active', 'expired', 'lifted'], state)) AS v
        FROM ${DB}.decisions WHERE changed_at <= now64(3))
  GROUP BY id
  HAVING st = 'active' AND created <= now64(3) AND expires > now64(3)`;

function ts(title: string, description: string, unit = 'short'): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .unit(unit)
    .height(8)
    .span(12)
    .lineWidth(1)
    .fillOpacity(10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(common.SortOrder.Descending),
    );
}

function tbl(title: string, description: string): table.PanelBuilder {
  return new table.PanelBuilder().title(title).description(description).height(9).span(12);
}

function single(title: string, description: string): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(title)
    .description(description)
    .height(4)
    .span(6)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .graphMode(common.BigValueGraphMode.None);
}

function variables(b: dashboard.DashboardBuilder): dashboard.DashboardBuilder {
  return b
    .withVariable(
      new dashboard.DatasourceVariableBuilder('ch_datasource')
        .label('ClickHouse')
        .type(CLICKHOUSE_PLUGIN)
        .description('the ClickHouse holding the mizugiwa database'),
    )
    .withVariable(
      new dashboard.DatasourceVariableBuilder('prom_datasource')
        .label('Prometheus')
        .type('prometheus')
        .description('the Prometheus scraping the mizugiwa processes'),
    )
    .withVariable(
      new dashboard.TextBoxVariableBuilder('database')
        .label('Database')
        .defaultValue('mizugiwa')
        .description('clickhouse.database of the mizugiwa configuration'),
    )
    .withVariable(
      new dashboard.QueryVariableBuilder('host')
        .label('MTA host')
        .datasource(CH)
        .query(
          `SELECT DISTINCT host FROM ${DB}.rollup_host_1m WHERE minute >= now() - INTERVAL 7 DAY ORDER BY host`,
        )
        .multi(true)
        .includeAll(true)
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc),
    );
}

/** Attacks and what was done about them: unknown users, sources, decisions, bounces. */
export function mitigationDashboard(): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder('mizugiwa: attacks and mitigation')
    .uid('mizugiwa-mitigation')
    .tags(['mizugiwa', 'mail'])
    .description(
      'Directory-harvest, bot-flow and bounce-storm activity across the fleet and the tempfail decisions answering it',
    )
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Operator actions')
        .datasource(CH)
        .enable(true)
        .iconColor('orange')
        .target(
          sqlTable(
            `SELECT changed_at AS time, concat(origin, ' ', if(state = 'lifted', 'lifted', 'set'), ' ', target, ': ', reason) AS text,
                    state AS tags
             FROM ${DB}.decisions
             WHERE $__timeFilter(changed_at) AND startsWith(origin, 'operator:')
             ORDER BY time`,
          ),
        ),
    );
  variables(b);

  b.withRow(new dashboard.RowBuilder('Now'));
  b.withPanel(
    single(
      'Decisions in force',
      'tempfail decisions active right now (from the decisions audit table)',
    ).withTarget(sqlTable(`SELECT count() AS decisions FROM (${DECISIONS_IN_FORCE})`)),
  );
  b.withPanel(
    single(
      'Operator decisions in force',
      'decisions in force that an operator made (origin operator:NAME)',
    ).withTarget(
      sqlTable(
        `SELECT countIf(startsWith(origin, 'operator:')) AS operator_decisions FROM (${DECISIONS_IN_FORCE})`,
      ),
    ),
  );
  b.withPanel(
    single(
      'Unknown-user rejects (range)',
      'RCPTs answered "user unknown" in the selected range, fleet-wide',
    ).withTarget(
      sqlTable(
        `SELECT sum(events) AS unknown_users FROM ${DB}.rollup_kind_1m
         WHERE $__timeFilter(minute) AND reason = 'user_unknown'`,
      ),
    ),
  );
  b.withPanel(
    single(
      'Sources with unknown users (range)',
      'distinct client addresses that tried unknown recipients',
    ).withTarget(
      sqlTable(
        `SELECT uniqExactIf(client_ip, user_unknown > 0) AS sources FROM ${DB}.rollup_source_1m
         WHERE $__timeFilter(minute)`,
      ),
    ),
  );

  b.withRow(new dashboard.RowBuilder('Unknown users (directory harvest)'));
  b.withPanel(
    ts(
      'Unknown-user rejects per minute, fleet-wide',
      'RCPTs answered 5.1.1 user unknown, all MTAs together',
    ).withTarget(
      sqlSeries(
        `SELECT $__timeInterval(minute) AS time, sum(events) / ($__interval_s / 60) AS unknown_users_per_min
         FROM ${DB}.rollup_kind_1m
         WHERE $__timeFilter(minute) AND reason = 'user_unknown'
         GROUP BY time ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    ts('Unknown-user rejects per minute, by MTA host', 'the same, per server (from mail_events)').withTarget(
      sqlSeries(
        `SELECT $__timeInterval(ts) AS time, host, count() / ($__interval_s / 60) AS unknown_users_per_min
         FROM ${DB}.mail_events
         WHERE $__timeFilter(ts) AND reason = 'user_unknown' AND ${HOSTS}
         GROUP BY time, host ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    tbl(
      'Top sources by unknown recipients',
      'client addresses with the most user-unknown rejects in the range',
    ).withTarget(
      sqlTable(
        `SELECT ${ipText('client_ip')} AS source, sum(user_unknown) AS unknown_users, sum(rejects) AS rejects,
                sum(connects) AS connects, sum(messages) AS messages, min(minute) AS first_seen, max(minute) AS last_seen
         FROM ${DB}.rollup_source_1m
         WHERE $__timeFilter(minute)
         GROUP BY client_ip HAVING unknown_users > 0
         ORDER BY unknown_users DESC LIMIT 25`,
      ),
    ),
  );
  b.withPanel(
    tbl(
      'Top networks by unknown recipients (/24, /64)',
      'a harvest spread over many addresses of one network; addresses = distinct sources inside it',
    ).withTarget(
      sqlTable(
        `SELECT concat(${ipText("tupleElement(IPv6CIDRToRange(client_ip, if(isIPAddressInRange(IPv6NumToString(client_ip), '::ffff:0.0.0.0/96'), 120, 64)), 1)")},
                       if(isIPAddressInRange(IPv6NumToString(client_ip), '::ffff:0.0.0.0/96'), '/24', '/64')) AS network,
                sum(user_unknown) AS unknown_users, uniqExactIf(client_ip, user_unknown > 0) AS addresses,
                sum(rejects) AS rejects
         FROM ${DB}.rollup_source_1m
         WHERE $__timeFilter(minute)
         GROUP BY network HAVING unknown_users > 0
         ORDER BY unknown_users DESC LIMIT 25`,
      ),
    ),
  );
  b.withPanel(
    ts(
      'Unknown users by recipient domain',
      'which of our domains is being harvested (top 10 in the range)',
    ).withTarget(
      sqlSeries(
        `SELECT $__timeInterval(minute) AS time, recipient_domain, sum(user_unknown) AS unknown_users
         FROM ${DB}.rollup_recipient_domain_1m
         WHERE $__timeFilter(minute) AND user_unknown > 0 AND recipient_domain IN (
           SELECT recipient_domain FROM ${DB}.rollup_recipient_domain_1m
           WHERE $__timeFilter(minute) GROUP BY recipient_domain ORDER BY sum(user_unknown) DESC LIMIT 10)
         GROUP BY time, recipient_domain ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    ts('Rejects by reason', 'every reject, fleet-wide, by the reason the parser gave it').withTarget(
      sqlSeries(
        `SELECT $__timeInterval(minute) AS time, if(reason = '', 'other', reason) AS reason, sum(events) AS rejects
         FROM ${DB}.rollup_kind_1m
         WHERE $__timeFilter(minute) AND kind = 'reject'
         GROUP BY time, reason ORDER BY time`,
      ),
    ),
  );

  b.withRow(new dashboard.RowBuilder('Decisions'));
  b.withPanel(
    tbl(
      'Decisions in force: targets',
      'what the access maps hold now; lift with POST /api/v1/decisions/TARGET/lift',
    ).withTarget(
      sqlTable(
        `SELECT target, detector, origin, reply, reason, offense, created, expires,
                dateDiff('minute', now64(3), expires) AS minutes_left
         FROM (${DECISIONS_IN_FORCE})
         ORDER BY expires DESC LIMIT 500`,
      ),
    ),
  );
  b.withPanel(
    ts(
      'Decisions created, expired, lifted',
      'created: first published; expired: ran out by themselves; lifted: by an operator (or a whitelist entry)',
    ).withTarget(
      sqlSeries(
        `SELECT $__timeInterval(t) AS time, countIf(what = 'created') AS created,
                countIf(what = 'expired') AS expired, countIf(what = 'lifted') AS lifted
         FROM (
           SELECT tupleElement(ev, 1) AS what, tupleElement(ev, 2) AS t
           FROM (
             SELECT id, argMax(state, v) AS st, min(created_at) AS c, argMax(expires_at, v) AS e, max(changed_at) AS last
             FROM (SELECT *, (changed_at, indexOf(['active', 'expired', 'lifted'], state)) AS v
                   FROM ${DB}.decisions WHERE created_at >= $__fromTime - INTERVAL 30 DAY AND created_at <= $__toTime)
             GROUP BY id)
           ARRAY JOIN [('created', c), (if(st = 'lifted', 'lifted', 'expired'), if(st = 'lifted', last, e))] AS ev)
         WHERE $__timeFilter(t) AND t <= now64(3)
         GROUP BY time ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    ts(
      'New decisions by detector',
      'dha_source, dha_prefix, dha_distributed, bot_flow, bounce_storm, operator',
    ).withTarget(
      sqlSeries(
        `SELECT $__timeInterval(created_at) AS time, detector, uniqExact(id) AS decisions
         FROM ${DB}.decisions
         WHERE $__timeFilter(created_at) AND state = 'active'
         GROUP BY time, detector ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    tbl(
      'Detections and why some got no decision',
      'no_decision: whitelisted, dry_run, cap_active, cap_rate, not_decided (report-only detectors)',
    ).withTarget(
      sqlTable(
        `SELECT detector, if(no_decision = '', 'decided', no_decision) AS outcome, count() AS detections,
                uniqExact(subject) AS subjects, max(ts) AS last
         FROM ${DB}.detections
         WHERE $__timeFilter(ts)
         GROUP BY detector, outcome ORDER BY detections DESC`,
      ),
    ),
  );

  b.withRow(new dashboard.RowBuilder('Bounces (reflected DDoS)'));
  b.withPanel(
    ts(
      'Null-sender (<>) volume and bounced deliveries',
      'DSNs arriving with the null sender, and our deliveries that bounced; a surge of the first is a bounce storm',
    )
      .withTarget(
        sqlSeries(
          `SELECT $__timeInterval(minute) AS time, sum(null_sender) AS null_sender_events
           FROM ${DB}.rollup_kind_1m WHERE $__timeFilter(minute)
           GROUP BY time ORDER BY time`,
          'A',
        ),
      )
      .withTarget(
        sqlSeries(
          `SELECT $__timeInterval(minute) AS time, sum(bounced) AS bounced_deliveries
           FROM ${DB}.rollup_recipient_domain_1m WHERE $__timeFilter(minute)
           GROUP BY time ORDER BY time`,
          'B',
        ),
      ),
  );
  b.withPanel(
    tbl(
      'Top null-sender sources',
      'who sends us the bounces (reflectors of a forged-sender campaign); Postfix logs the client on the client= line of the queue, so it is joined by queue id',
    ).withTarget(
      sqlTable(
        `SELECT ${ipText('src')} AS source, uniqExact(host, queue_id) AS null_sender_messages, max(ts) AS last_seen
         FROM (
           SELECT q.host AS host, q.queue_id AS queue_id, q.ts AS ts,
                  if(q.client_ip != toIPv6('::'), q.client_ip, c.first_client) AS src
           FROM (SELECT host, queue_id, ts, client_ip FROM ${DB}.mail_events
                 WHERE $__timeFilter(ts) AND kind = 'queued' AND sender = '' AND queue_id != '') AS q
           LEFT JOIN (SELECT host, queue_id, any(client_ip) AS first_client FROM ${DB}.mail_events
                      WHERE $__timeFilter(ts) AND kind = 'client' AND queue_id != '' AND client_ip != toIPv6('::')
                      GROUP BY host, queue_id) AS c
           ON q.host = c.host AND q.queue_id = c.queue_id)
         WHERE src != toIPv6('::')
         GROUP BY src ORDER BY null_sender_messages DESC LIMIT 25`,
      ),
    ),
  );
  return b.build();
}

/** Per-server health and the pipeline: event rates, silence, ingest delay, lags, errors. */
export function pipelineDashboard(): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder('mizugiwa: servers and pipeline')
    .uid('mizugiwa-pipeline')
    .tags(['mizugiwa', 'mail'])
    .description(
      'Per-MTA event rates and silence, log-to-store delay, and the ship/bus/detect/store/respond metrics',
    )
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair);
  variables(b);

  b.withRow(new dashboard.RowBuilder('MTA servers'));
  b.withPanel(
    ts('Events per minute by MTA host', 'log lines parsed and stored, per server').withTarget(
      sqlSeries(
        `SELECT $__timeInterval(minute) AS time, host, sum(events) / ($__interval_s / 60) AS events_per_min
         FROM ${DB}.rollup_host_1m
         WHERE $__timeFilter(minute) AND ${HOSTS}
         GROUP BY time, host ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    tbl(
      'Server health',
      'per server in the range: volume by kind, and how long since its last stored event (a silent server stopped shipping)',
    ).withTarget(
      sqlTable(
        `SELECT host, any(mta) AS mta, sum(events) AS total_events, sumIf(events, kind = 'connect') AS connects,
                sumIf(events, kind = 'reject') AS rejects, sumIf(events, kind = 'delivery') AS deliveries,
                sumIf(events, kind = 'unknown') AS unparsed, max(minute) AS last_minute,
                dateDiff('second', max(minute), now()) AS silent_s
         FROM ${DB}.rollup_host_1m
         WHERE $__timeFilter(minute) AND ${HOSTS}
         GROUP BY host ORDER BY host`,
      ),
    ),
  );
  b.withPanel(
    ts(
      'Log-to-store delay by host',
      'seconds from the log line (its time stamp) to ClickHouse (ingested_at), median',
    )
      .withTarget(
        sqlSeries(
          `SELECT $__timeInterval(ts) AS time, host, quantile(0.5)(dateDiff('second', ts, ingested_at)) AS delay_s
         FROM ${DB}.mail_events
         WHERE $__timeFilter(ts) AND ${HOSTS}
         GROUP BY time, host ORDER BY time`,
        ),
      )
      .unit('s'),
  );
  b.withPanel(
    ts(
      'Unparsed lines per minute by host',
      "lines the parser could not classify (kind 'unknown'): a new log format?",
    ).withTarget(
      sqlSeries(
        `SELECT $__timeInterval(minute) AS time, host, sum(events) AS unparsed
         FROM ${DB}.rollup_host_1m
         WHERE $__timeFilter(minute) AND kind = 'unknown' AND ${HOSTS}
         GROUP BY time, host ORDER BY time`,
      ),
    ),
  );
  b.withPanel(
    tbl('Dead letters', 'records the store could not write, and why').withTarget(
      sqlTable(
        `SELECT source, topic, substring(error, 1, 200) AS error, count() AS records, max(ts) AS last
         FROM ${DB}.dead_letters
         WHERE $__timeFilter(ts)
         GROUP BY source, topic, error ORDER BY records DESC LIMIT 50`,
      ),
    ),
  );

  b.withRow(new dashboard.RowBuilder('Pipeline (Prometheus)'));
  b.withPanel(
    ts('Shipper: events produced per second', 'per shipper instance').withTarget(
      promql(
        'sum by (instance) (rate(mizugiwa_ship_events_produced_total[$__rate_interval]))',
        '{{instance}}',
      ),
    ),
  );
  b.withPanel(
    ts('Shipper: bytes not yet acknowledged', 'log bytes read but not acknowledged by the bus, per instance')
      .unit('bytes')
      .withTarget(promql('sum by (instance) (mizugiwa_ship_bytes_behind)', '{{instance}}')),
  );
  b.withPanel(
    ts('Bus consumer lag', 'records behind the end of each topic, per consumer group').withTarget(
      promql('sum by (group, topic) (mizugiwa_bus_consumer_lag)', '{{group}} {{topic}}'),
    ),
  );
  b.withPanel(
    ts(
      'Detector and store lag',
      'detect: wall clock minus newest event time; store: age of the newest stored record',
    )
      .unit('s')
      .withTarget(promql('max by (instance) (mizugiwa_detect_lag_seconds)', 'detect {{instance}}', 'A'))
      .withTarget(promql('max by (topic) (mizugiwa_store_lag_seconds)', 'store {{topic}}', 'B')),
  );
  b.withPanel(
    ts('Store: rows inserted per second and dead letters', 'by table')
      .withTarget(
        promql(
          'sum by (table) (rate(mizugiwa_store_rows_inserted_total[$__rate_interval]))',
          '{{table}}',
          'A',
        ),
      )
      .withTarget(
        promql('sum(rate(mizugiwa_store_dead_letters_total[$__rate_interval]))', 'dead letters', 'B'),
      ),
  );
  b.withPanel(
    ts(
      'Responders: entries in force and stale maps',
      'per MTA agent; stale = rebuilds failing, the agent retries',
    )
      .withTarget(
        promql('sum by (instance, mta) (mizugiwa_respond_entries)', 'entries {{instance}} {{mta}}', 'A'),
      )
      .withTarget(
        promql('max by (instance, mta) (mizugiwa_respond_map_stale)', 'stale {{instance}} {{mta}}', 'B'),
      ),
  );
  b.withPanel(
    ts('Responders: refusals by safety rule', 'decisions an agent refused to put in its map').withTarget(
      promql('sum by (rule) (rate(mizugiwa_respond_refusals_total[$__rate_interval]))', '{{rule}}'),
    ),
  );
  b.withPanel(
    ts('API requests by status', 'includes the mitigation feed fetches of MTAs without the agent').withTarget(
      promql('sum by (status) (rate(mizugiwa_api_requests_total[$__rate_interval]))', '{{status}}'),
    ),
  );
  return b.build();
}

/** Every dashboard, keyed by the file name it is written to. */
export function buildDashboards(): Record<string, dashboard.Dashboard> {
  return {
    'mizugiwa-mitigation.json': mitigationDashboard(),
    'mizugiwa-pipeline.json': pipelineDashboard(),
  };
}
