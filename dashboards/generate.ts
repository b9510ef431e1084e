import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDashboards } from './mizugiwa.js';

// `npm run dashboards`: writes dashboards/*.json from dashboards/mizugiwa.ts (run from dist/ after
// the build, or from the source tree). The JSON files are committed: provision or import them.

function outDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dashboards');
    dir = dirname(dir);
  }
  throw new Error('repository root (package.json) not found above the generator');
}

/** The text written for one dashboard: stable key order as built, two-space JSON, final newline. */
export function dashboardText(d: unknown): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const dir = outDir();
  for (const [file, d] of Object.entries(buildDashboards())) {
    writeFileSync(join(dir, file), dashboardText(d));
    process.stdout.write(`${join(dir, file)}\n`);
  }
}
