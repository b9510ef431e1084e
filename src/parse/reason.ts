// Why a reject happened, from the reply text. The order matters: an unknown user is always
// `user_unknown` (the detector's main signal), whatever the reply code; then the causes that say
// who is at fault; then 4xx answers without a more specific cause are `tempfail`.
import type { RejectReason } from '../event/mail-event.js';

const USER_UNKNOWN =
  /user unknown|unknown user|undeliverable address|unrouteable address|no such (?:user|mailbox|recipient)|user doesn't exist|user does not exist|mailbox (?:unavailable|not found|does not exist)|recipient (?:unknown|not found|does not exist)|invalid recipient|unknown (?:local|virtual) user/i;
const RELAY =
  /Relay access denied|[Rr]elaying denied|relay not permitted|[Rr]elay(?:ing)? not (?:permitted|allowed)/;
const RBL =
  /blocked using|[Ll]isted (?:at|in|by|on) |\bRBL\b|\bDNSBL\b|[Bb]lacklisted|[Bb]locklisted|[Dd]enylisted|[Ss]pamhaus|[Ss]pamcop|barracudacentral/;
const RATE =
  /[Tt]oo many (?:connections|recipients|messages|mails|errors|commands)|[Rr]ate ?limit|[Tt]oo much mail|[Ff]lood|[Tt]hrottl|[Tt]oo many concurrent|[Cc]onnection (?:rate|count) limit/;
const TEMP =
  /temporary lookup failure|Server configuration (?:error|problem)|[Tt]ry (?:again )?later|Service currently unavailable/;

/** Postfix reject text after the reply code (`<a@b>: Recipient address rejected: ...`). */
export function postfixReason(text: string, code: number | undefined): RejectReason {
  const temp = code !== undefined && code >= 400 && code < 500;
  if (text.indexOf('Relay access denied') !== -1) return 'relay_denied';
  const rcpt = text.indexOf('Recipient address rejected: ');
  if (rcpt !== -1) {
    if (USER_UNKNOWN.test(text)) return 'user_unknown';
    if (RBL.test(text)) return 'rbl';
    if (RATE.test(text)) return 'rate_limited';
    return temp ? 'tempfail' : 'policy';
  }
  if (text.indexOf('Sender address rejected: ') !== -1) return 'sender_rejected';
  if (text.indexOf('Helo command rejected: ') !== -1) return 'helo_rejected';
  if (RBL.test(text)) return 'rbl';
  if (text.indexOf('Client host rejected: ') !== -1) {
    if (RATE.test(text) && text.indexOf('Client host rejected: Too many unknown') === -1)
      return 'rate_limited';
    return temp ? 'tempfail' : 'client_rejected';
  }
  if (RATE.test(text)) return 'rate_limited';
  if (USER_UNKNOWN.test(text)) return 'user_unknown';
  if (
    text.indexOf('Data command rejected') !== -1 ||
    text.indexOf('End-of-data rejected') !== -1 ||
    text.indexOf('Message size exceeds') !== -1 ||
    text.indexOf('Message content rejected') !== -1 ||
    text.indexOf('message content rejected') !== -1 ||
    text.indexOf('mproper use of SMTP command pipelining') !== -1 ||
    text.indexOf('Policy') !== -1 ||
    text.indexOf('policy') !== -1
  )
    return temp ? 'tempfail' : 'policy';
  if (temp || TEMP.test(text)) return 'tempfail';
  return 'other';
}

/** sendmail `ruleset=NAME ... reject=TEXT` and the bare `<rcpt>... TEXT` lines. */
export function sendmailReason(
  ruleset: string | undefined,
  text: string,
  code: number | undefined,
): RejectReason {
  const temp = code !== undefined && code >= 400 && code < 500;
  if (USER_UNKNOWN.test(text)) {
    if (ruleset !== 'check_mail' && text.indexOf('Domain of sender') === -1) return 'user_unknown';
  }
  if (RELAY.test(text)) return 'relay_denied';
  if (RBL.test(text)) return 'rbl';
  if (ruleset === 'check_relay') return temp ? 'tempfail' : 'client_rejected';
  if (RATE.test(text)) return 'rate_limited';
  if (ruleset === 'check_mail') return 'sender_rejected';
  if (ruleset !== undefined && ruleset.indexOf('helo') !== -1) return 'helo_rejected';
  if (temp || TEMP.test(text)) return 'tempfail';
  if (ruleset === 'check_rcpt' || ruleset === 'check_compat' || ruleset === 'check_data') return 'policy';
  return 'other';
}

/** exim `rejected RCPT <x>: TEXT` and friends; `what` is RCPT, MAIL, HELO, CONNECT, DATA. */
export function eximReason(what: string, text: string, temporary: boolean): RejectReason {
  if (what === 'RCPT' && USER_UNKNOWN.test(text)) return 'user_unknown';
  if (RELAY.test(text)) return 'relay_denied';
  if (RBL.test(text)) return 'rbl';
  if (RATE.test(text)) return 'rate_limited';
  if (what === 'MAIL' || text.indexOf('ender verify fail') !== -1) return 'sender_rejected';
  if (what === 'HELO') return 'helo_rejected';
  if (temporary) return 'tempfail';
  if (what === 'CONNECT') return 'client_rejected';
  if (what === 'DATA') return 'policy';
  return 'other';
}

/** A delivery/DSN text that says the recipient does not exist (a 5xx with one of the known phrases). */
export function isUserUnknownText(text: string): boolean {
  return USER_UNKNOWN.test(text);
}
