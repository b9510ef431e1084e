import { constants } from 'node:fs';
import { chmod, chown, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Entry } from './entry.js';
import { compareEntries } from './entry.js';
import { adminText, composeText, splitSection } from './section.js';
import { overlaps, parseTarget, type Target } from './target.js';

// What every access map shares: the text file with the administrator's lines and the agent's
// section, and the one way it is ever replaced: write a temp file beside it, fsync, build its
// database under the temp name, check the database answers what was written, fsync, rename the
// database over the live one, then the text, then fsync the directory. A failure at any step
// leaves the old map in force. A crash (kill -9) at any step leaves the old or the new map, plus
// temp files that the next start removes.

export interface InstallResult {
  /** Entries written (those not skipped). */
  written: number;
  /** Entries left out because the administrator now manages an overlapping key by hand. */
  skipped: Entry[];
  /** Address keys of the administrator's lines, as read for this rebuild. */
  handManaged: Target[];
  duration_ms: number;
}

export class MapError extends Error {
  override name = 'MapError';
  constructor(
    message: string,
    readonly stage: 'read' | 'section' | 'write' | 'build' | 'verify' | 'rename' | 'reload',
  ) {
    super(message);
  }
}

export interface AccessMap {
  /** "postfix hash:/etc/postfix/mizugiwa_access". */
  readonly describe: string;
  /** The text file of the map (the agent takes a lock beside it). */
  readonly path?: string;
  /** Why this map cannot hold the target (e.g. a /20 in a hash table), or null. */
  cannotHold(t: Target): string | null;
  /** Address keys of the administrator's own lines, read from the text file now. */
  readHandManaged(): Promise<Target[]>;
  /** Rewrites the map with exactly these entries in the agent's section. Throws MapError. */
  install(entries: readonly Entry[]): Promise<InstallResult>;
  /** The lines the agent's section would hold (for dry-run and tests). */
  render(entries: readonly Entry[]): string[];
  /** Removes temp files a crashed rebuild left. */
  cleanup(): Promise<void>;
}

export const TMP_SUFFIX = '.mizugiwa-tmp';

export interface MapFormat {
  /** Key and value of an entry's line, or why the map cannot hold it. */
  line(t: Target): { key: string } | { error: string };
  value(e: Entry): string;
  /** How a line is written: key, separator, value. */
  separator: string;
  /** Address targets named by the administrator's lines (other keys are ignored). */
  handKeys(adminText: string): Target[];
  /** Suffix of the database the builder creates beside the text file; null: the text is the map. */
  dbSuffix: string | null;
  /** Builds the database from the text at `tmp`; throws MapError('build'). */
  build(tmp: string): Promise<void>;
  /** Checks `tmp` answers `expected` (keys as written); throws MapError('verify'). */
  verify(tmp: string, expected: ReadonlyMap<string, string>, adminText: string): Promise<void>;
  /** After the rename (cidr: postfix reload). */
  afterInstall?(): Promise<void>;
  header: string[];
}

interface Identity {
  ino: number;
  size: number;
  mtimeMs: number;
}

export class MapFile implements AccessMap {
  readonly tmp: string;
  constructor(
    readonly path: string,
    readonly describe: string,
    private readonly format: MapFormat,
  ) {
    this.tmp = path + TMP_SUFFIX;
  }

  cannotHold(t: Target): string | null {
    const l = this.format.line(t);
    return 'error' in l ? l.error : null;
  }

  render(entries: readonly Entry[]): string[] {
    return this.renderLines(entries).lines;
  }

  private renderLines(entries: readonly Entry[]): { lines: string[]; expected: Map<string, string> } {
    const keyed: { e: Entry; t: Target; key: string }[] = [];
    for (const e of entries) {
      const p = parseTarget(e.target);
      if (!p.ok) continue;
      const l = this.format.line(p.target);
      if ('error' in l) continue;
      keyed.push({ e, t: p.target, key: l.key });
    }
    keyed.sort((a, b) =>
      compareEntries(
        { prefix: a.t.prefix, bytes: a.t.addr.toByteArray() },
        { prefix: b.t.prefix, bytes: b.t.addr.toByteArray() },
      ),
    );
    const lines: string[] = [];
    const expected = new Map<string, string>();
    for (const { e, key } of keyed) {
      const value = this.format.value(e);
      lines.push(
        `# ${e.target} decision=${e.decision_id.replace(/[^\x21-\x7e]/g, '?')} expires=${new Date(e.expires_at).toISOString()}`,
      );
      lines.push(`${key}${this.format.separator}${value}`);
      expected.set(key, value);
    }
    return { lines, expected };
  }

  async readHandManaged(): Promise<Target[]> {
    const { text } = await this.readText();
    return this.format.handKeys(adminText(splitSection(text)));
  }

  private async readText(): Promise<{
    text: string;
    id: Identity | null;
    mode: number;
    uid: number;
    gid: number;
  }> {
    try {
      const st = await stat(this.path);
      const text = await readFile(this.path, 'latin1');
      return {
        text,
        id: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs },
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return { text: '', id: null, mode: 0o644, uid: -1, gid: -1 };
      }
      throw new MapError(`cannot read ${this.path}: ${(err as Error).message}`, 'read');
    }
  }

  async install(entries: readonly Entry[]): Promise<InstallResult> {
    const t0 = performance.now();
    // An administrator saving the file between our read and our rename would lose the edit:
    // check the file is unchanged just before the rename, and start over if it is not.
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.installOnce(entries);
        if (r) return { ...r, duration_ms: performance.now() - t0 };
      } finally {
        await this.cleanup();
      }
      if (attempt >= 3) {
        throw new MapError(`${this.path} kept changing while the agent rebuilt it; retrying later`, 'rename');
      }
    }
  }

  private async installOnce(entries: readonly Entry[]): Promise<Omit<InstallResult, 'duration_ms'> | null> {
    const before = await this.readText();
    let split: ReturnType<typeof splitSection>;
    try {
      split = splitSection(before.text);
    } catch (err) {
      throw new MapError(`${this.path}: ${(err as Error).message}`, 'section');
    }
    const admin = adminText(split);
    const hand = this.format.handKeys(admin);
    const skipped: Entry[] = [];
    const kept: Entry[] = [];
    for (const e of entries) {
      const p = parseTarget(e.target);
      if (p.ok && hand.some((h) => overlaps(p.target, h))) skipped.push(e);
      else kept.push(e);
    }
    const { lines, expected } = this.renderLines(kept);
    const header = [
      `: maintained by the mizugiwa respond agent (${lines.length / 2} entries, ${new Date().toISOString()})`,
      '# Lines inside this section are rewritten on every change; add your own entries outside it.',
      ...this.format.header,
    ];
    const text = composeText(split, header, lines);

    await this.writeSynced(this.tmp, text, before.mode);
    const db = this.format.dbSuffix;
    if (db) {
      await this.format.build(this.tmp);
      await this.format.verify(this.tmp, expected, admin);
      await this.syncFile(this.tmp + db);
      await this.copyOwnership(this.tmp + db, this.path + db, before);
    } else {
      await this.format.verify(this.tmp, expected, admin);
    }
    if (before.uid >= 0) await this.chownQuiet(this.tmp, before.uid, before.gid);

    const now = await this.identity();
    if (!sameIdentity(before.id, now)) return null;
    try {
      // The database first: it is what the MTA reads. Renaming the text first would let a reader
      // see a text newer than its database (Postfix warns about that).
      if (db) await rename(this.tmp + db, this.path + db);
      await rename(this.tmp, this.path);
      await this.syncDir();
    } catch (err) {
      throw new MapError(`cannot rename the new map into ${this.path}: ${(err as Error).message}`, 'rename');
    }
    if (this.format.afterInstall) await this.format.afterInstall();
    return { written: kept.length, skipped, handManaged: hand };
  }

  private async identity(): Promise<Identity | null> {
    try {
      const st = await stat(this.path);
      return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return null;
    }
  }

  private async writeSynced(file: string, text: string, mode: number): Promise<void> {
    try {
      const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
      try {
        await fh.writeFile(text, 'latin1');
        await fh.chmod(mode);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new MapError(`cannot write ${file}: ${(err as Error).message}`, 'write');
    }
  }

  private async syncFile(file: string): Promise<void> {
    try {
      const fh = await open(file, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new MapError(`cannot fsync ${file}: ${(err as Error).message}`, 'build');
    }
  }

  private async syncDir(): Promise<void> {
    const fh = await open(dirname(this.path), 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** The new database gets the mode and owner of the one it replaces (makemap creates 0640 files). */
  private async copyOwnership(file: string, live: string, text: { uid: number; gid: number }): Promise<void> {
    try {
      const st = await stat(live);
      await chmod(file, st.mode & 0o7777);
      await this.chownQuiet(file, st.uid, st.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (text.uid >= 0) await this.chownQuiet(file, text.uid, text.gid);
    }
  }

  private async chownQuiet(file: string, uid: number, gid: number): Promise<void> {
    if (process.getuid?.() !== 0) return;
    await chown(file, uid, gid);
  }

  async cleanup(): Promise<void> {
    const db = this.format.dbSuffix;
    await rm(this.tmp, { force: true });
    if (db) await rm(this.tmp + db, { force: true });
  }

  toString(): string {
    return `${this.describe} (${basename(this.path)} in ${join(dirname(this.path))})`;
  }
}

function sameIdentity(a: Identity | null, b: Identity | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}
