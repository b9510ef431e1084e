// Which insert failures are about the data (retrying cannot help: find the refused rows and
// dead-letter them) and which are about ClickHouse (unreachable, overloaded, timing out:
// retry the same batch until it goes through).

/** ClickHouse error codes that mean "this value cannot go into this column". */
const DATA_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  130, // CANNOT_READ_ARRAY_FROM_TEXT
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  376, // CANNOT_PARSE_UUID
  407, // DECIMAL_OVERFLOW
  441, // CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
  467, // CANNOT_PARSE_BOOL
  675, // CANNOT_PARSE_IPV4
  676, // CANNOT_PARSE_IPV6
]);

const DATA_ERROR_TYPE =
  /^(CANNOT_PARSE_|CANNOT_READ_|TYPE_MISMATCH|INCORRECT_DATA|VALUE_IS_OUT_OF_RANGE|CANNOT_INSERT_NULL|CANNOT_CONVERT_TYPE|TOO_LARGE_STRING_SIZE|DECIMAL_OVERFLOW)/;

/** True when ClickHouse refused the rows themselves, not the request. */
export function isDataError(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown };
  if (typeof e?.type === 'string' && DATA_ERROR_TYPE.test(e.type)) return true;
  const code =
    typeof e?.code === 'string' ? Number(e.code) : typeof e?.code === 'number' ? e.code : Number.NaN;
  if (Number.isInteger(code) && DATA_ERROR_CODES.has(code)) return true;
  // Old servers answer with only a text: "Code: 27, e.displayText() = DB::Exception: ...".
  const m = typeof e?.message === 'string' ? /^Code: (\d+)[,.]/.exec(e.message) : null;
  return m !== null && DATA_ERROR_CODES.has(Number(m[1]));
}
