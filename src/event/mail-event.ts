// MailEvent: one normalized record per log line (contract v1, schemas/mail-event.schema.json).
// Field names are snake_case. A field that does not apply is absent.
// Fields and kinds are only ever added, never renamed: detect, store and respond code against them.

export type Mta = 'postfix' | 'sendmail' | 'exim';

/**
 * What happened. Documented in schemas/mail-event.schema.json and src/parse/README.md.
 * `unknown` is a line that was not recognized (or was malformed): it is still an event, never dropped.
 */
export type EventKind =
  | 'connect'
  | 'disconnect'
  | 'client' // a message entered the queue: smtpd `QUEUEID: client=...`, pickup `uid= from=`
  | 'reject'
  | 'queued' // qmgr from=/size/nrcpt, sendmail from=, exim <=
  | 'message_id'
  | 'delivery' // a delivery attempt: status tells sent, deferred, bounced, expired, ...
  | 'removed'
  | 'expired'
  | 'bounce_notice' // the MTA created a non-delivery/delay/success notification
  | 'auth' // a successful SMTP AUTH (sendmail AUTH=server)
  | 'auth_failure'
  | 'protocol_error' // pipelining, non-SMTP command, synchronization error, too many errors
  | 'lost_connection'
  | 'timeout'
  | 'no_mail' // session ended without MAIL (sendmail "did not issue MAIL/EXPN/VRFY/ETRN", exim "no MAIL")
  | 'pregreet'
  | 'postscreen' // postscreen PASS/HANGUP/DNSBL rank/COMMAND ... verdicts
  | 'dnsbl' // a DNSBL listing reported for a client (postfix dnsblog)
  | 'rate_limited' // RCPT flood throttling, anvil limits, connection rate
  | 'filter' // an access/content/milter action other than reject: hold, discard, redirect, warn, ...
  | 'milter'
  | 'tls' // TLS session established or failed
  | 'warning'
  | 'error' // fatal/panic/SYSERR lines of the MTA itself
  | 'stats' // anvil statistics and similar
  | 'daemon' // MTA daemon state (rejecting connections on daemon, starting, ...)
  | 'unknown';

export type RejectReason =
  | 'user_unknown'
  | 'relay_denied'
  | 'sender_rejected'
  | 'helo_rejected'
  | 'client_rejected'
  | 'rbl'
  | 'policy'
  | 'rate_limited'
  | 'tempfail'
  | 'other';

/** Accepted and attempted counts of one SMTP command at disconnect (postfix `rcpt=0/1`). */
export interface CommandCount {
  ok: number;
  total: number;
}

export interface MailEvent {
  /** Deterministic id: host + file identity + byte offset (set by the shipper/replay). */
  id?: string;
  /** ISO 8601 with offset. */
  ts?: string;
  host?: string;
  program?: string;
  pid?: number;
  mta?: Mta;
  kind: EventKind;
  /**
   * Why a `reject` happened. Also set to `user_unknown` on a `delivery`/`bounce_notice` whose
   * recipient was refused because it does not exist (the contract: every unknown-user rejection).
   */
  reason?: RejectReason;
  /** SMTP command the event is about (RCPT, MAIL, HELO, DATA, CONNECT, VRFY, ...), upper case. */
  command?: string;
  /** Text, IPv6 in RFC 5952 form, no `IPv6:` prefix. */
  client_ip?: string;
  client_host?: string;
  client_port?: number;
  queue_id?: string;
  /** Envelope sender without angle brackets; the null sender `<>` is "". */
  sender?: string;
  recipient?: string;
  /** All recipients when one line names several (sendmail `to=<a>,<b>`, exim `=>` with `->`); recipient is the first. */
  recipients?: string[];
  orig_to?: string;
  dsn?: string;
  reply_code?: number;
  /** Delivery status, normalized across MTAs: sent, deferred, bounced, expired, ...; postscreen verdicts as logged. */
  status?: string;
  relay?: string;
  message_id?: string;
  helo?: string;
  size?: number;
  nrcpt?: number;
  /** Delivery delay in seconds. */
  delay?: number;
  /** Postfix delay breakdown as logged (`a/b/c/d`). */
  delays?: string;
  /** Free text: the reject/status text as logged. */
  text?: string;
  sasl_username?: string;
  sasl_method?: string;
  /** SMTP protocol as logged (SMTP, ESMTP, ESMTPS, esmtpsa, ...). */
  proto?: string;
  /** Queue id of the notification a bounce/delay notice created (postfix bounce, sendmail DSN, exim R=). */
  bounce_queue_id?: string;
  /** Command counts at disconnect (postfix `ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`). */
  command_counts?: Record<string, CommandCount>;
  /** Action of a filter/milter/access rule other than a plain reject (hold, discard, milter-reject, ...). */
  filter_action?: string;
  /** A number the event is about: DNSBL rank, anvil statistic value, pregreet byte count, load average. */
  count?: number;
  /** Raw line as read, without the trailing newline: invalid UTF-8 and NUL replaced by U+FFFD, capped (see truncated). */
  raw: string;
  /** The line was longer than the raw cap (64 KiB): raw holds its head and a marker; kind is `unknown`. */
  truncated?: boolean;
}
