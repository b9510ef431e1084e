import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

// The checkpoint: for every file being read, its identity and the offset after the last line
// the bus has acknowledged. It is the shipper's whole memory across restarts, so it is written
// the careful way: a temp file in the same directory, fsync, rename over the old one, fsync of
// the directory (without it a power cut can bring back the old name).

export const CHECKPOINT_VERSION = 1;

export interface CheckpointEntry {
  /** Stable name of the file's content (see identity.ts); part of every event id. */
  file_id: string;
  /** Where the file was last seen. */
  path: string;
  /** The configured path it was first followed at (its rotations are looked for beside it). */
  origin_path: string;
  dev: number;
  ino: number;
  /** sha256 of the first `fp_len` bytes. */
  fp: string;
  fp_len: number;
  /** Offset after the last acknowledged line: a restart reads from here. */
  offset: number;
  /** ISO time the offset last moved. */
  updated_at: string;
}

export interface Checkpoint {
  version: typeof CHECKPOINT_VERSION;
  host: string;
  written_at: string;
  files: CheckpointEntry[];
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Reads the checkpoint; null when there is none yet (first start). A damaged file is an error, never silently a first start. */
export async function readCheckpoint(path: string): Promise<Checkpoint | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(
      `checkpoint ${path} is not valid JSON (${(err as Error).message}); ` +
        'move it away to start over (start_at decides where reading begins)',
    );
  }
  const problem = checkpointProblem(doc);
  if (problem) throw new CheckpointError(`checkpoint ${path}: ${problem}`);
  return doc as Checkpoint;
}

function checkpointProblem(doc: unknown): string | null {
  if (typeof doc !== 'object' || doc === null) return 'not an object';
  const d = doc as Partial<Checkpoint>;
  if (d.version !== CHECKPOINT_VERSION) return `unsupported version ${String(d.version)}`;
  if (!Array.isArray(d.files)) return '`files` is not a list';
  for (const [i, f] of d.files.entries()) {
    if (
      typeof f !== 'object' ||
      f === null ||
      typeof f.file_id !== 'string' ||
      typeof f.path !== 'string' ||
      typeof f.origin_path !== 'string' ||
      typeof f.fp !== 'string' ||
      !Number.isSafeInteger(f.dev) ||
      !Number.isSafeInteger(f.ino) ||
      !Number.isSafeInteger(f.fp_len) ||
      !Number.isSafeInteger(f.offset) ||
      f.offset < 0
    )
      return `files[${i}] is malformed`;
  }
  return null;
}

/** Writes the checkpoint atomically and durably (temp + fsync + rename + directory fsync). */
export async function writeCheckpoint(path: string, cp: Checkpoint): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(cp, null, 1)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
