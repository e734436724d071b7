/**
 * vitest globalSetup for the out-of-process suites (test/e2e, test/cli): they run the
 * built package (`bin/agentstore.js` -> `dist/`), so dist must be current. Builds once
 * per run when dist/cli/main.js is missing or older than any file under src/; a fresh
 * dist (as after `npm test`, which builds first) costs nothing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

export function distIsStale(): boolean {
  const main = path.join(root, 'dist/cli/main.js');
  if (!fs.existsSync(main)) return true;
  return fs.statSync(main).mtimeMs < newestMtime(path.join(root, 'src'));
}

export default function setup(): void {
  if (!distIsStale()) return;
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`e2e globalSetup: the build (tsc -p tsconfig.build.json) failed; the e2e and CLI suites run dist/:\n${result.stdout}${result.stderr}`);
  }
}
