import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

// A file is known by device + inode + a fingerprint of its first line (up to
// `fingerprint_bytes`). Inodes are reused after a delete and a copytruncate keeps the inode
// while replacing the content; the fingerprint tells those apart from the file we read.
// The fingerprint covers the first line only (or the first N bytes of a longer one) because
// those bytes never change once written: an id computed from it when the first line is
// shipped is the same id after a restart, whatever the file's size then.

export interface Fingerprint {
  /** sha256 (hex) of the first `len` bytes. */
  hash: string;
  len: number;
}

export interface FileIdentity {
  dev: number;
  ino: number;
  /** null until the file has a complete first line (or `fingerprint_bytes` bytes). */
  fp: Fingerprint | null;
}

/**
 * Fingerprint of the first line of `head` (the first bytes of a file), or null when that line is
 * not complete yet and shorter than `maxBytes`.
 */
export function fingerprintOf(head: Buffer, maxBytes: number): Fingerprint | null {
  const nl = head.subarray(0, maxBytes).indexOf(10);
  let len: number;
  if (nl >= 0) len = nl + 1;
  else if (head.length >= maxBytes) len = maxBytes;
  else return null;
  return { hash: hashBytes(head.subarray(0, len)), len };
}

export function hashBytes(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads the first `len` bytes of an open file (fewer if it is shorter). */
export async function readHead(fd: FileHandle, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fd.read(buf, got, len - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Does the file behind `fd` still start with the bytes `fp` was taken from? */
export async function fingerprintMatches(fd: FileHandle, fp: Fingerprint): Promise<boolean> {
  const head = await readHead(fd, fp.len);
  return head.length === fp.len && hashBytes(head) === fp.hash;
}

/**
 * The stable short name of one file's content, used in every event id. Computed once, when the
 * fingerprint is first known, and kept in the checkpoint (so a device number that changes across
 * a reboot does not change the ids of lines shipped again).
 */
export function fileIdOf(dev: number, ino: number, fp: Fingerprint): string {
  return createHash('sha256').update(`${dev}:${ino}:${fp.len}:${fp.hash}`).digest('hex').slice(0, 16);
}

/**
 * Deterministic event id: `<host>:<file id>:<byte offset of the line>`. Readable on purpose: an
 * operator can find the line (the checkpoint maps file ids to paths) and a consumer can drop
 * duplicates by id.
 */
export function eventId(host: string, fileId: string, offset: number): string {
  return `${host}:${fileId}:${offset}`;
}

const COMPRESSED_EXT = /\.(gz|bz2|xz|zst|zstd|lz4|lzma|lz|z|zip|7z|br)$/i;

/** Rotated logs compressed by logrotate are never read (their content was read before, as text). */
export function isCompressedName(path: string): boolean {
  return COMPRESSED_EXT.test(path);
}

/** Magic numbers of the compressors logrotate is configured with (compresscmd). */
export function isCompressedHead(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && (head[1] === 0x8b || head[1] === 0x9d)) return true; // gzip, compress
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    return true; // xz
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true; // zstd
  if (head.length >= 4 && head.readUInt32LE(0) === 0x184d2204) return true; // lz4 frame
  if (
    head.length >= 10 &&
    head.toString('latin1', 0, 3) === 'BZh' &&
    head.toString('latin1', 4, 10) === '1AY&SY'
  )
    return true; // bzip2
  return false;
}
