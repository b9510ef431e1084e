// Column layout of the per-source table of stage 1 (one slot per client IP).

/** unknown-recipient rejects */
export const C_UNK = 0;
/** accepted recipients (messages × nrcpt where known) */
export const C_ACC = 1;
/** accepted messages */
export const C_MSG = 2;
/** connections (postfix connect lines) */
export const C_CONN = 3;
/** sessions that ended without DATA (postfix disconnect data=0, sendmail/exim no MAIL) */
export const C_NODATA = 4;
/** lost connections */
export const C_LOST = 5;
/** pregreet */
export const C_PREG = 6;
/** protocol errors and other (non user-unknown) rejects */
export const C_PROTO = 7;
export const COUNTERS = 8;

/** hosts that saw the source: bit (host index % 32) */
export const A_HOSTS = 0;
/** HELO sketch of the current and previous half window, and the half-window number of the current one */
export const A_HELO_CUR = 1;
export const A_HELO_PREV = 2;
export const A_HELO_EPOCH = 3;
export const AUX = 4;
