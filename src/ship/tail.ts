import { type FileHandle, open } from 'node:fs/promises';
import {
  type Fingerprint,
  fileIdOf,
  fingerprintMatches,
  fingerprintOf,
  isCompressedHead,
  readHead,
} from './identity.js';
import { type Line, LineSplitter } from './lines.js';

// One open file. It reads through its own file descriptor, so a rename or an unlink of the path
// does not stop it: the old file is read to its end after a rename-and-create rotation.

export interface TailOptions {
  maxLineBytes: number;
  fingerprintBytes: number;
  chunkBytes: number;
}

export type ReadStatus =
  /** `lines` holds the lines completed by the bytes read. */
  | 'data'
  /** Nothing new to read. */
  | 'eof'
  /** The file's first line became known (`fp` is set); nothing was consumed: decide, then read again. */
  | 'identified'
  /** The file was truncated or rewritten (copytruncate): its content is not what was read so far. */
  | 'truncated';

export interface ReadResult {
  status: ReadStatus;
  lines: Line[];
}

export class FileTail {
  /** Fingerprint of the first line; null until it is complete. */
  fp: Fingerprint | null = null;
  /** Name of this content in event ids; set by the shipper once `fp` is known. */
  fileId: string | null = null;
  /** Last known size (from reads and fstat). */
  size = 0;
  /** When the file last grew (ms since epoch). */
  lastGrowthAt = Date.now();
  /** When the path stopped pointing at this file (renamed away or deleted); null while it is in place. */
  orphanedAt: number | null = null;
  /** The last read reached the end of the file. */
  atEof = false;
  /** When a read last found the file as expected (not truncated), ms since epoch. */
  lastCheckedAt = Date.now();
  private readonly splitter: LineSplitter;
  private closed = false;

  private constructor(
    public path: string,
    private readonly fd: FileHandle,
    readonly dev: number,
    readonly ino: number,
    start: number,
    private readonly opts: TailOptions,
  ) {
    this.splitter = new LineSplitter(start, opts.maxLineBytes);
  }

  /** Opens PATH; null when it is gone or is not a regular file. */
  static async open(path: string, start: number, opts: TailOptions): Promise<FileTail | null> {
    let fd: FileHandle;
    try {
      fd = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR') return null;
      throw err;
    }
    try {
      const st = await fd.stat();
      if (!st.isFile()) {
        await fd.close();
        return null;
      }
      const tail = new FileTail(path, fd, st.dev, st.ino, start, opts);
      tail.size = st.size;
      return tail;
    } catch (err) {
      await fd.close().catch(() => {});
      throw err;
    }
  }

  get key(): string {
    return `${this.dev}:${this.ino}`;
  }

  /** Offset after the last complete line handed out. */
  get committed(): number {
    return this.splitter.committed;
  }

  get readPosition(): number {
    return this.splitter.readPosition;
  }

  /** Starts reading at `offset` (a line boundary the shipper knows, e.g. a checkpoint). */
  seek(offset: number): void {
    this.splitter.reset(offset);
  }

  /** Starts at the end: after the last complete line (see lineBoundaryBefore). */
  async seekEnd(): Promise<void> {
    const st = await this.fd.stat();
    this.size = st.size;
    this.splitter.reset(await lineBoundaryBefore(this.fd, st.size, this.opts.maxLineBytes));
  }

  /** The first bytes of the file: for compression magic and fingerprints. */
  head(): Promise<Buffer> {
    return readHead(this.fd, this.opts.fingerprintBytes);
  }

  async isCompressed(): Promise<boolean> {
    return isCompressedHead(await readHead(this.fd, 16));
  }

  /** Forgets what was read and starts over at 0 as a new file (after a copytruncate). */
  restart(): void {
    this.splitter.reset(0);
    this.fp = null;
    this.fileId = null;
    this.atEof = false;
  }

  async read(): Promise<ReadResult> {
    const pos = this.splitter.readPosition;
    // An idle file is asked for its size first: no read buffer is allocated for nothing.
    if (this.atEof) {
      const { size } = await this.fd.stat();
      if (size <= pos) return this.eof(pos, size);
    }
    const buf = Buffer.allocUnsafe(this.opts.chunkBytes);
    const { bytesRead } = await this.fd.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return this.eof(pos, (await this.fd.stat()).size);
    this.atEof = false;
    if (pos + bytesRead > this.size) {
      this.size = pos + bytesRead;
      this.lastGrowthAt = Date.now();
    }
    // A copytruncate may have replaced the content under the offset just read (at 0 too: the
    // fingerprint may have been taken just before the truncation): the first line tells.
    // Checked after the read, so the bytes in hand are known to be the old file's.
    if (this.fp !== null && !(await fingerprintMatches(this.fd, this.fp))) {
      return { status: 'truncated', lines: [] };
    }
    this.lastCheckedAt = Date.now();
    const before = this.splitter.committed;
    const lines = this.splitter.push(buf.subarray(0, bytesRead));
    if (lines.length > 0 && this.fp === null) {
      const fp = fingerprintOf(await this.head(), this.opts.fingerprintBytes);
      // Undo: the shipper first decides whose content this is (a copy of a file it knows?).
      this.splitter.reset(before);
      if (fp === null) return { status: 'truncated', lines: [] };
      this.fp = fp;
      return { status: 'identified', lines: [] };
    }
    return { status: 'data', lines };
  }

  private eof(pos: number, size: number): ReadResult {
    if (size < pos) return { status: 'truncated', lines: [] };
    this.size = size;
    this.atEof = true;
    this.lastCheckedAt = Date.now();
    return { status: 'eof', lines: [] };
  }

  /** The id this content gets when it is new (not a copy of a known file). */
  ownFileId(): string {
    if (!this.fp) throw new Error(`fingerprint of ${this.path} not known yet`);
    return fileIdOf(this.dev, this.ino, this.fp);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fd.close().catch(() => {});
  }
}

/**
 * Where "start at the end" begins: after the last `\n`, so a line being written right now is
 * shipped whole when it completes. A file with no `\n` at all starts at 0.
 */
async function lineBoundaryBefore(fd: FileHandle, size: number, maxLineBytes: number): Promise<number> {
  if (size === 0) return 0;
  const len = Math.min(size, maxLineBytes + 1);
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fd.read(buf, 0, len, size - len);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
  if (nl >= 0) return size - len + nl + 1;
  return size <= maxLineBytes ? 0 : size;
}
