/**
 * The package as a user gets it: `npm pack` in a copy of this checkout, then
 * `npm install ./agentstore-x.y.z.tgz` in a new project outside it, as the README says.
 * There it type-checks a file importing the package (types resolve through `exports`), runs
 * the README's library snippet (read from README.md by its marker, so the two cannot drift),
 * runs `npx agentstore --help`, and serves HTTP from the installed bin.
 *
 * - The pack runs in a copy (the files git sees, uncommitted ones included, nothing it
 *   ignores), because `prepack` deletes and rebuilds dist/, which the other out-of-process
 *   suites are running at the same time.
 * - The install uses a new, empty npm cache: every package is resolved and fetched from the
 *   registry, as on a user's first install. Only better-sqlite3's native addon is not
 *   compiled (~2 min on 2 cores): its install script (prebuild-install) first looks for a
 *   prebuilt addon in `<npm cache>/_prebuilds`, then downloads one from GitHub, then
 *   compiles. The test puts the addon this checkout compiled for the same better-sqlite3
 *   version and the running Node there, so the script runs and takes the same path as a
 *   user's download. Where that addon does not fit (another version, another Node), nothing
 *   is seeded and the install compiles.
 * - The registry is a service: without it the suite is skipped with the reason, and under
 *   CI=true it fails.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFiles, readmeBlock, registryUnreachable, run, runtimeImports, seedSqlitePrebuild, show } from './pack-kit.js';
import { killChildren, ROOT, startServer, waitForExit } from './process.js';

/** Engine warnings npm prints on Node 20 that are known and accepted (docs/architecture.md, "Packaging"). */
const ACCEPTED_ENGINE_WARNINGS: Readonly<Record<string, string>> = {
  // @fastify/static 10.1.4+ (path-authorisation fixes; it serves /docs) requires it; it declares
  // node >=22 and loads on 20.19+ through require(esm). The 'serves' test below loads it.
  'content-disposition': 'node >=22',
};

const unreachable = await registryUnreachable();
const TITLE = 'the packed package, installed into a new project';

if (unreachable && process.env.CI === 'true') {
  describe(TITLE, () => {
    it('can reach the npm registry (CI=true: a missing service is a failure)', () => {
      expect.fail(unreachable);
    });
  });
} else if (unreachable) {
  describe.skip(`${TITLE} (skipped: ${unreachable})`, () => {
    it('installs', () => {});
  });
} else {
  describe(TITLE, () => {
    let tmp = '';
    let copy = '';
    let project = '';
    let cache = '';
    let tarball = '';
    let unpacked = '';
    let manifest: {
      scripts?: Record<string, string>;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      exports?: unknown;
      bin?: Record<string, string>;
    } = {};
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

    beforeAll(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-pack-'));
      copy = path.join(tmp, 'checkout');
      project = path.join(tmp, 'my-app');
      cache = path.join(tmp, 'npm-cache');
      unpacked = path.join(tmp, 'unpacked');
      for (const dir of [copy, project, cache, unpacked]) fs.mkdirSync(dir);
    });
    afterAll(async () => {
      await killChildren();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('packs: built code, types and bin, nothing else, no install script', async () => {
      const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
      expect(listed.status, listed.stderr).toBe(0);
      for (const file of listed.stdout.split('\0').filter(Boolean)) {
        const from = path.join(ROOT, file);
        if (!fs.existsSync(from)) continue; // deleted in the work tree
        fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
        fs.copyFileSync(from, path.join(copy, file));
      }
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));

      const pack = await run('npm', ['pack', '--json', '--pack-destination', tmp], copy, 240_000);
      expect(pack.code, show(pack)).toBe(0);
      const [info] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
      tarball = path.join(tmp, info.filename);
      const tar = spawnSync('tar', ['-xzf', tarball, '-C', unpacked]);
      expect(tar.status, tar.stderr.toString()).toBe(0);
      const root = path.join(unpacked, 'package');
      const files = listFiles(root);
      expect(new Set(files)).toEqual(new Set(info.files.map((f) => f.path)));
      manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as typeof manifest;

      // Only the build, the bin and npm's own files; no tests, sources or fixtures.
      expect(files.filter((f) => !/^(dist|bin)\//.test(f) && !['package.json', 'README.md'].includes(f) && !/^LICEN[CS]E/.test(f))).toEqual([]);
      expect(files.filter((f) => /(^|\/)(test|tests|__tests__|fixtures)\/|\.test\.|\.spec\./.test(f))).toEqual([]);

      // Every source module is built, with its types (the migrations among them: they are modules).
      const sources = listFiles(path.join(copy, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'));
      expect(sources.length).toBeGreaterThan(0);
      const missing = sources.flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.d.ts')}`]).filter((f) => !files.includes(f));
      expect(missing).toEqual([]);
      expect(files.filter((f) => f.startsWith('dist/db/migrations/') && /\/\d{4}-.*\.js$/.test(f)).length).toBeGreaterThan(0);

      // Source maps carry their sources: src/ is not in the package.
      for (const map of files.filter((f) => f.endsWith('.js.map'))) {
        const parsed = JSON.parse(fs.readFileSync(path.join(root, map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
        expect(parsed.sourcesContent?.length, map).toBe(parsed.sources.length);
        expect(parsed.sourcesContent?.every((s) => typeof s === 'string'), map).toBe(true);
      }

      // No lifecycle script runs in the user's install (npm 11 lists `prepare` of a tarball, too).
      for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) expect(manifest.scripts?.[script], script).toBeUndefined();

      // `exports` and `bin` point at files in the package.
      const targets: string[] = [];
      const collect = (value: unknown): void => {
        if (typeof value === 'string') targets.push(value);
        else if (value && typeof value === 'object') Object.values(value).forEach(collect);
      };
      collect(manifest.exports);
      expect(targets).toContain('./dist/index.d.ts');
      for (const target of targets) expect(files, target).toContain(path.posix.normalize(target));
      const bin = manifest.bin?.agentstore;
      expect(bin).toBeDefined();
      expect(fs.readFileSync(path.join(root, bin!), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);

      // What the built code loads is a dependency, never a devDependency.
      const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})]);
      const undeclared = new Map<string, string>();
      for (const file of files.filter((f) => f.endsWith('.js'))) {
        for (const name of runtimeImports(fs.readFileSync(path.join(root, file), 'utf8'))) if (!declared.has(name)) undeclared.set(name, file);
      }
      expect(Object.fromEntries(undeclared)).toEqual({});
    }, 300_000);

    it('installs with `npm install ./agentstore-x.y.z.tgz`: no warnings but the accepted ones', async () => {
      expect(tarball, 'the pack test ran first').not.toBe('');
      const projectJson = JSON.parse(readmeBlock(readme, 'project package.json')) as Record<string, unknown>;
      fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', private: true, ...projectJson }, null, 2));
      const seeded = seedSqlitePrebuild(cache, manifest.dependencies?.['better-sqlite3'] ?? '');

      // The user's command; --cache keeps it off this machine's npm cache, --no-audit/--no-fund its output quiet.
      const install = await run('npm', ['install', '--cache', cache, '--no-audit', '--no-fund', tarball], project, 600_000);
      expect(install.code, show(install)).toBe(0);

      const warnings = install.stderr.split('\n').filter((line) => line.startsWith('npm warn'));
      const engine = new Set([...install.stderr.matchAll(/npm warn EBADENGINE\s+package: '((?:@[^/]+\/)?[^@']+)@[^']*'/g)].map((m) => m[1]!));
      const other = warnings.filter((line) => !line.startsWith('npm warn EBADENGINE'));
      expect(other, show(install)).toEqual([]);
      const expectedEngine = Number(process.versions.node.split('.')[0]) < 22 ? Object.keys(ACCEPTED_ENGINE_WARNINGS) : [];
      expect([...engine].filter((name) => !expectedEngine.includes(name)), show(install)).toEqual([]);
      expect(install.stderr).not.toMatch(/agentstore/);

      if ('addon' in seeded) {
        // The seeded addon was taken: the install did not fall back to compiling (the test's speed rests on it).
        const installed = path.join(project, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');
        expect(fs.readFileSync(installed).equals(fs.readFileSync(seeded.addon)), 'prebuild-install did not take the seeded addon').toBe(true);
      }
    }, 660_000);

    it('type-checks against the package types and runs the README library snippet', async () => {
      expect(fs.existsSync(path.join(project, 'node_modules/agentstore/package.json')), 'the install test ran first').toBe(true);
      fs.writeFileSync(path.join(project, 'snippet.ts'), `${readmeBlock(readme, 'library snippet')}\n`);
      // `// @ts-expect-error` fails the check if a type silently became `any`.
      fs.writeFileSync(
        path.join(project, 'types.ts'),
        [
          "import { createStore, isAgentstoreError, systemContext, type Page, type Store, type StoredRecord, type TenantContext } from 'agentstore';",
          'export const open: () => Promise<Store> = () => createStore();',
          "export const ctx: TenantContext = systemContext('tenant-id');",
          'export const version = (record: StoredRecord): number => record.version;',
          'export const count = (page: Page<StoredRecord>): number => page.items.length;',
          'export const known = (error: unknown): boolean => isAgentstoreError(error);',
          '// @ts-expect-error a record version is a number',
          'export const wrong: string = ({} as StoredRecord).version;',
          '',
        ].join('\n'),
      );
      fs.writeFileSync(
        path.join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            // Check the package's .d.ts too, with nothing but the package installed (no @types/node).
            skipLibCheck: false,
            types: [],
            outDir: 'out',
            noEmitOnError: true,
          },
          files: ['snippet.ts', 'types.ts'],
        }),
      );
      const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project, 120_000);
      expect(tsc.code, show(tsc)).toBe(0);

      const snippet = await run(process.execPath, ['out/snippet.js'], project, 60_000);
      expect(snippet.code, show(snippet)).toBe(0);
      expect(snippet.stderr).toBe('');
      expect(fs.existsSync(path.join(project, 'data/agentstore.db'))).toBe(true);
    }, 180_000);

    it('runs `npx agentstore --help` from the project', async () => {
      // --no-install (npx turns it into --yes=false): never fetch a registry package of that
      // name if the local bin were missing. (A bare --no would swallow `agentstore` as its value.)
      const help = await run('npx', ['--no-install', 'agentstore', '--help'], project, 120_000);
      expect(help.code, show(help)).toBe(0);
      expect(help.stdout).toMatch(/^Usage: agentstore/m);
      expect(help.stdout).toMatch(/\bserve\b/);
    }, 150_000);

    it('serves HTTP from the installed bin, /docs included', async () => {
      const server = await startServer(
        { AGENTSTORE_DATA_DIR: path.join(project, 'server-data'), AGENTSTORE_SERVICE_KEY: `assk_${crypto.randomBytes(24).toString('hex')}` },
        { bin: path.join(project, 'node_modules/.bin/agentstore'), cwd: project, timeoutMs: 30_000 },
      );
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const spec = await fetch(`${server.url}/openapi.json`);
      expect(spec.status).toBe(200);
      expect(((await spec.json()) as { openapi: string }).openapi).toMatch(/^3\.1/);
      const docs = await fetch(`${server.url}/docs/`);
      expect(docs.status).toBe(200);
      expect(await docs.text()).toMatch(/<html/i);
      server.kill('SIGTERM');
      expect(await waitForExit(server, 10_000)).toEqual({ code: 0, signal: null });
      expect(server.stderr()).toBe('');
    }, 60_000);
  });
}
