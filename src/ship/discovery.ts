import { readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { isCompressedName } from './identity.js';

// Expands the configured paths and globs. Wildcards (`*`, `?`, `[abc]`, `[!abc]`) may stand in
// any path component; `**` is not supported (walking a whole tree every few seconds is not what
// a log shipper should do). A pattern without wildcards is returned as is, whether the file
// exists yet or not: the shipper waits for it.

const GLOB_CHARS = /[*?[]/;

export function hasGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/** Compiles one path component pattern into an anchored RegExp. */
export function componentRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** All existing paths matching `pattern` (absolute), plus the pattern itself when it has no wildcard. */
export async function expand(pattern: string): Promise<string[]> {
  const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
  if (!hasGlob(abs)) return [abs];
  const parts = abs.split(sep).filter((p) => p !== '');
  let current: string[] = [sep];
  for (const part of parts) {
    const next: string[] = [];
    if (!hasGlob(part)) {
      for (const dir of current) next.push(join(dir, part));
    } else {
      const re = componentRegExp(part);
      for (const dir of current) {
        let names: string[];
        try {
          names = await readdir(dir);
        } catch {
          continue;
        }
        for (const name of names) {
          // Like a shell: a leading dot must be matched explicitly.
          if (name.startsWith('.') && !part.startsWith('.')) continue;
          if (re.test(name)) next.push(join(dir, name));
        }
      }
    }
    current = next;
    if (current.length === 0) break;
  }
  return current.sort();
}

/** Every file the configured patterns name now, compressed rotations left out, each once. */
export async function discover(patterns: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (const pattern of patterns) {
    for (const path of await expand(pattern)) {
      if (!isCompressedName(path)) seen.add(path);
    }
  }
  return [...seen];
}

/** Directories to watch for new files: the deepest directory of each pattern without wildcards. */
export function watchDirs(patterns: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const pattern of patterns) {
    const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
    let dir = dirname(abs);
    while (hasGlob(dir)) dir = dirname(dir);
    dirs.add(dir);
  }
  return [...dirs];
}

/**
 * Where a file that left its path may be now: names in the same directory that start with its
 * name (`maillog.1`, `maillog-20261127`, `mail.log.0`), compressed ones left out.
 */
export async function rotatedSiblings(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n !== base && n.startsWith(base) && !isCompressedName(n))
    .map((n) => join(dir, n))
    .sort();
}
