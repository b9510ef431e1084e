// Adds and removes lines of an MTA access map source file and rebuilds its indexed table,
// leaving other writers' lines alone (the map is shared by every test that runs against the MTA).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';

export type Rebuild = (file: string) => void;

function rewrite(file: string, edit: (lines: string[]) => string[], rebuild: Rebuild): void {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l, i, all) => l !== '' || i < all.length - 1);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, edit(lines).join('\n') + '\n');
  renameSync(tmp, file);
  rebuild(file);
}

export function addAccessLine(file: string, line: string, rebuild: Rebuild): void {
  rewrite(file, (lines) => [...lines, line], rebuild);
}

export function removeAccessLine(file: string, line: string, rebuild: Rebuild): void {
  rewrite(file, (lines) => lines.filter((l) => l !== line), rebuild);
}

/**
 * Postfix notices a rebuilt indexed table by its mtime in whole seconds: a second postmap within
 * the same second as the previous one goes unseen by running smtpd processes (until they exit).
 * So rebuild only once the clock has left the second of the current .db's mtime.
 */
function waitPastMtimeSecond(db: string): void {
  if (!existsSync(db)) return;
  const second = Math.floor(statSync(db).mtimeMs / 1000);
  const wait = (second + 1) * 1000 - Date.now();
  if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait + 20);
}

export const postmap =
  (bin: string): Rebuild =>
  (file) => {
    waitPastMtimeSecond(`${file}.db`);
    execFileSync(bin, [`hash:${file}`], { stdio: 'pipe' });
  };

export const makemap =
  (bin: string): Rebuild =>
  (file) => {
    execFileSync(bin, ['hash', file], { input: readFileSync(file), stdio: ['pipe', 'pipe', 'pipe'] });
  };
