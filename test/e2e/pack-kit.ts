/**
 * Helpers of test/e2e/pack.test.ts: child processes with a clean environment, the README's
 * marked blocks, what built code loads, and the better-sqlite3 prebuild seed.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runCommand, type CliResult } from './process.js';

/** The README block after `<!-- pack-test: NAME … -->`: the first fenced block that follows. */
export function readmeBlock(readme: string, name: string): string {
  const marker = `<!-- pack-test: ${name}`;
  const at = readme.indexOf(marker);
  const end = readme.indexOf('-->', at);
  if (at < 0 || end < 0) throw new Error(`README.md has no ${marker} -->`);
  const fence = /^```[a-z]*\n([\s\S]*?)\n```$/m.exec(readme.slice(end));
  if (!fence) throw new Error(`README.md has no fenced block after ${marker} -->`);
  return fence[1]!;
}

/**
 * The bare package names a built file loads at run time: static and dynamic imports,
 * re-exports, and `require` (the SQLite driver and re2js come through `createRequire`).
 */
export function runtimeImports(js: string): Set<string> {
  const names = new Set<string>();
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
    /\brequire(?:\.resolve)?\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bcreateRequire\([^)]*\)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of js.matchAll(pattern)) {
      const spec = match[1]!;
      if (spec.startsWith('.') || spec.startsWith('/') || isBuiltin(spec)) continue;
      const parts = spec.split('/');
      names.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
    }
  }
  return names;
}

/** The child's environment from scratch: no npm_config_* / npm_package_* of the `npm test` around us. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    // npm and its scripts run on the same Node as this test.
    PATH: [path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter),
    HOME: process.env.HOME,
    TZ: 'UTC',
  };
  // What reaching the registry may need on this machine.
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return env;
}

/** `command args` in `cwd` with the clean environment. */
export const run = (command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<CliResult> =>
  runCommand(command, args, { cwd, env: cleanEnv(), timeoutMs });

export const show = (r: CliResult): string => `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-6000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;

export function listFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

/**
 * Puts this checkout's compiled better-sqlite3 addon where prebuild-install looks first,
 * when it is the version the package installs and loads in this Node. Returns its path, or
 * the reason nothing was seeded.
 */
export function seedSqlitePrebuild(cacheDir: string, wantedVersion: string): { addon: string } | { reason: string } {
  const requireRoot = createRequire(path.join(ROOT, 'package.json'));
  const pkgFile = requireRoot.resolve('better-sqlite3/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { name: string; version: string };
  if (pkg.version !== wantedVersion) return { reason: `the checkout has better-sqlite3 ${pkg.version}, the package wants ${wantedVersion}` };
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  if (process.platform !== 'linux' || !glibc) return { reason: 'the prebuilt file name is derived here for glibc Linux only' };
  const addon = path.join(path.dirname(pkgFile), 'build/Release/better_sqlite3.node');
  try {
    const Sqlite = requireRoot('better-sqlite3') as new (file: string) => { close(): void };
    new Sqlite(':memory:').close();
  } catch (error) {
    return { reason: `the checkout's better-sqlite3 does not load in this Node (${String(error)})` };
  }
  // prebuild-install's download URL and cache file name (its util.js getDownloadUrl and cachedPrebuild).
  const { getDownloadUrl } = createRequire(pkgFile)('prebuild-install/util.js') as { getDownloadUrl(opts: object): string };
  const url = getDownloadUrl({ pkg, runtime: 'node', abi: process.versions.modules, platform: process.platform, arch: process.arch, libc: '', 'tag-prefix': 'v' });
  const digest = crypto.createHash('sha512').update(url).digest('hex').slice(0, 6);
  const target = path.join(cacheDir, '_prebuilds', `${digest}-${path.basename(url).replace(/[^a-zA-Z0-9.]+/g, '-')}`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // The layout of a better-sqlite3 release asset: build/Release/better_sqlite3.node.
  const tar = spawnSync('tar', ['-czf', target, '-C', path.dirname(pkgFile), 'build/Release/better_sqlite3.node']);
  if (tar.status !== 0) return { reason: `tar failed: ${tar.stderr.toString()}` };
  return { addon };
}

export async function registryUnreachable(): Promise<string | undefined> {
  const ping = await run('npm', ['ping'], os.tmpdir(), 30_000);
  return ping.code === 0 ? undefined : `the npm registry is unreachable (npm ping: ${ping.stderr.trim().split('\n').at(-1) ?? `exit ${ping.code}`})`;
}
