// MailEvent: one normalized record per log line (contract v1, schemas/mail-event.schema.json).
// Field names are snake_case. A field that does not apply is absent.

export type Mta = 'postfix' | 'sendmail' | 'exim';

/**
 * What happened. Documented in schemas/mail-event.schema.json and the README.
 * `unknown` is a line that was not recognized (or was malformed): it is still an event, never dropped.
 */
export type EventKind =
  | 'connect'
  | 'disconnect'
  | 'client' // smtpd accepted a message into the queue: `QUEUEID: client=...`
  | 'reject'
  | 'queued' // qmgr from=/size/nrcpt, sendmail from=, exim <=
  | 'message_id'
  | 'delivery' // a delivery attempt: status tells sent, deferred, bounced, expired, ...
  | 'removed'
  | 'expired'
  | 'bounce_notice' // the MTA created a non-delivery/delay/success notification
  | 'auth_failure'
  | 'protocol_error' // pipelining, non-SMTP command, synchronization error, too many errors
  | 'lost_connection'
  | 'timeout'
  | 'no_mail' // session ended without MAIL (sendmail "did not issue MAIL/EXPN/VRFY/ETRN", exim "no MAIL")
  | 'pregreet'
  | 'postscreen' // postscreen PASS/HANGUP/DNSBL rank/COMMAND ... verdicts
  | 'rate_limited' // RCPT flood throttling, anvil limits, connection rate
  | 'milter'
  | 'warning'
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
  reason?: RejectReason;
  /** SMTP command the event is about (RCPT, MAIL, HELO, DATA, CONNECT, VRFY, ...). */
  command?: string;
  /** Text, IPv6 in RFC 5952 form, no `IPv6:` prefix. */
  client_ip?: string;
  client_host?: string;
  client_port?: number;
  queue_id?: string;
  /** Envelope sender without angle brackets; the null sender `<>` is "". */
  sender?: string;
  recipient?: string;
  orig_to?: string;
  dsn?: string;
  reply_code?: number;
  status?: string;
  relay?: string;
  message_id?: string;
  helo?: string;
  size?: number;
  nrcpt?: number;
  /** Delivery delay in seconds. */
  delay?: number;
  /** Free text: the reject/status text as logged. */
  text?: string;
  sasl_username?: string;
  /** Raw line as read (invalid UTF-8 replaced), without the trailing newline. */
  raw: string;
}
