// The agent's part of a map's text file lies between two marker lines; everything outside them is
// the administrator's and is copied byte for byte (the file is handled as latin1 so that any bytes,
// valid UTF-8 or not, round-trip unchanged).

export const BEGIN = '# BEGIN mizugiwa';
export const END = '# END mizugiwa';

export interface SplitText {
  /** Administrator's text before the section (ends in a newline, or is empty). */
  before: string;
  /** Administrator's text after the section. */
  after: string;
  hasSection: boolean;
}

export class SectionError extends Error {
  override name = 'SectionError';
}

/** Splits a map's text; a missing, repeated or unterminated marker is an error (nothing is rewritten). */
export function splitSection(text: string): SplitText {
  const lines = text.split('\n');
  const begins: number[] = [];
  const ends: number[] = [];
  lines.forEach((l, i) => {
    const s = l.replace(/\r$/, '');
    if (s.startsWith(BEGIN)) begins.push(i);
    else if (s.startsWith(END)) ends.push(i);
  });
  if (begins.length === 0 && ends.length === 0) {
    const before = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
    return { before, after: '', hasSection: false };
  }
  if (begins.length !== 1 || ends.length !== 1 || ends[0]! < begins[0]!) {
    throw new SectionError(
      `expected one "${BEGIN}" line followed by one "${END}" line, found ${begins.length} and ${ends.length}` +
        (begins.length === 1 && ends.length === 1 ? ' in the wrong order' : '') +
        '; fix the file by hand (the agent rewrites only its own section)',
    );
  }
  // Every line before the marker ends in a newline, blank lines included.
  const before = begins[0] === 0 ? '' : `${lines.slice(0, begins[0]).join('\n')}\n`;
  const after = lines.slice(ends[0]! + 1).join('\n');
  return { before, after, hasSection: true };
}

/** The administrator's lines (outside the section). */
export function adminText(s: SplitText): string {
  return s.before + s.after;
}

export function composeText(s: SplitText, header: string[], body: string[]): string {
  const section = [BEGIN + header[0], ...header.slice(1), ...body, END].join('\n');
  return `${s.before}${section}\n${s.after}`;
}
