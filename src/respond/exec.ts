import { spawn } from 'node:child_process';

// Runs postmap, makemap and the reload command: argv lists (never a shell), a time limit, stdin
// fed from a string, output collected up to a bound.

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command could not be started at all (not found, not executable). */
  spawnError?: string;
}

const MAX_OUTPUT = 64 * 1024 * 1024;

export function execCommand(
  argv: readonly string[],
  opts: { input?: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', spawnError: 'empty command' });
      return;
    }
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size <= MAX_OUTPUT) into.push(b);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    let spawnError: string | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code === 'ENOENT' ? `command not found: ${cmd}` : `cannot run ${cmd}: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('latin1'),
        stderr: Buffer.concat(err).toString('utf8').trim(),
        ...(spawnError ? { spawnError, code: null } : {}),
      });
    });
    // A command that exits without reading its stdin closes the pipe under us: not our error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** One line for logs: the command and the tail of what it said. */
export function describeFailure(argv: readonly string[], r: ExecResult): string {
  if (r.spawnError) return `${argv.join(' ')}: ${r.spawnError}`;
  const how = r.signal ? `was killed by ${r.signal} (time limit?)` : `exited with ${r.code}`;
  const said = r.stderr ? `: ${r.stderr.split('\n').slice(-3).join(' | ').slice(0, 500)}` : '';
  return `${argv.join(' ')} ${how}${said}`;
}
