/**
 * `migrate up --to`: the version must be one of the migrations', which may have gaps; the
 * count of migrations is not a version. The CLI itself refuses with the option's name
 * (test/cli/cli.test.ts, "bad arguments").
 */
import { describe, expect, it } from 'vitest';
import { parseMigrationVersion } from '../../src/cli/migrate-args.js';
import { MIGRATIONS, type Migration } from '../../src/db/migrations/index.js';

const withVersions = (...versions: number[]): Migration[] => versions.map((version) => ({ version, name: `m${version}`, statements: () => [] }));

describe('parseMigrationVersion', () => {
  it('takes each version of this code, and nothing else', () => {
    for (const m of MIGRATIONS) expect(parseMigrationVersion(String(m.version))).toBe(m.version);
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    for (const bad of ['0', String(latest + 1), '-1', 'abc', '', '1.0', '2.5', '1e1', ' 1', '0x1', '9999999999']) {
      expect(() => parseMigrationVersion(bad), JSON.stringify(bad)).toThrow(`must be the version of one of this code's migrations: ${MIGRATIONS.map((m) => m.version).join(', ')}`);
    }
  });

  it('with gaps in the versions: a version inside the range that names no migration is refused, the last one past the count is taken', () => {
    const migrations = withVersions(1, 2, 5);
    expect(parseMigrationVersion('5', migrations)).toBe(5);
    expect(parseMigrationVersion('2', migrations)).toBe(2);
    expect(() => parseMigrationVersion('3', migrations)).toThrow(/: 1, 2, 5$/);
    expect(() => parseMigrationVersion('4', migrations)).toThrow(/: 1, 2, 5$/);
  });
});
