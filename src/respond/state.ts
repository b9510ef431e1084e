import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Entry } from './entry.js';
import { parseTarget } from './target.js';

// The agent's own record of the entries in force. It is the source the map is rebuilt from, so
// that a restart converges without the bus: load it, drop what expired meanwhile, rebuild.
// Written atomically (temp + fsync + rename, then the directory is fsynced).

export const STATE_VERSION = 1;

interface StoredEntry extends Omit<Entry, 'expires_at'> {
  expires_at: string;
}

interface StoredState {
  version: number;
  written_at: string;
  entries: StoredEntry[];
}

export interface LoadedState {
  entries: Entry[];
  /** Why some or all of the file was not used (the agent logs it and goes on). */
  problems: string[];
}

export async function loadState(path: string): Promise<LoadedState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], problems: [] };
    return { entries: [], problems: [`cannot read ${path}: ${(err as Error).message}`] };
  }
  let doc: StoredState;
  try {
    doc = JSON.parse(text) as StoredState;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.entries))
      throw new Error('no entries list');
    if (doc.version !== STATE_VERSION) throw new Error(`version ${doc.version}, expected ${STATE_VERSION}`);
  } catch (err) {
    // Kept for a person to look at; the agent starts empty (no entry is safer than a wrong one).
    const aside = `${path}.unreadable-${Date.now()}`;
    await rename(path, aside).catch(() => {});
    return {
      entries: [],
      problems: [`${path} is not a state file (${(err as Error).message}); moved to ${aside}`],
    };
  }
  const entries: Entry[] = [];
  const problems: string[] = [];
  for (const s of doc.entries) {
    const e = fromStored(s);
    if (typeof e === 'string') problems.push(`${path}: entry dropped: ${e}`);
    else entries.push(e);
  }
  return { entries, problems };
}

function fromStored(s: unknown): Entry | string {
  if (typeof s !== 'object' || s === null) return 'not an object';
  const o = s as Record<string, unknown>;
  const t = parseTarget(o.target);
  if (!t.ok) return t.error;
  const expires = typeof o.expires_at === 'string' ? Date.parse(o.expires_at) : Number.NaN;
  if (!Number.isFinite(expires)) return `${t.target.text}: bad expires_at`;
  if (typeof o.reply !== 'string') return `${t.target.text}: bad reply`;
  return {
    target: t.target.text,
    reply: o.reply,
    expires_at: expires,
    decision_id: typeof o.decision_id === 'string' ? o.decision_id : '',
    detector: typeof o.detector === 'string' ? o.detector : '',
    created_at: typeof o.created_at === 'string' ? o.created_at : '',
  };
}

export async function saveState(path: string, entries: Iterable<Entry>): Promise<void> {
  const doc: StoredState = {
    version: STATE_VERSION,
    written_at: new Date().toISOString(),
    entries: [...entries].map((e) => ({ ...e, expires_at: new Date(e.expires_at).toISOString() })),
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(doc, null, 1)}\n`, { fsync: true, mode: 0o640 });
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

const heldHere = new Set<string>();

/**
 * One agent per file (its state file, its map): a pid file FILE.lock (or FILE<suffix>) beside it. A stale one (its
 * process is gone, e.g. after kill -9) is taken over.
 */
export async function acquireLock(file: string, suffix = '.lock'): Promise<() => Promise<void>> {
  const lock = file + suffix;
  if (heldHere.has(lock)) throw new Error(`another agent in this process uses ${file}`);
  await mkdir(dirname(lock), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      heldHere.add(lock);
      return async () => {
        heldHere.delete(lock);
        await rm(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(
          `another mizugiwa agent (pid ${pid}) uses ${file}; stop it, or give this one its own respond.state_path and respond.map_path`,
        );
      }
      await rm(lock, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${lock}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
