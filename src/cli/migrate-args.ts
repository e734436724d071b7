import { MIGRATIONS, type Migration } from '../db/migrations/index.js';

/**
 * `migrate up --to <version>`: one of the versions of `migrations` (this code's, by default).
 * Versions may have gaps (a migration of another branch not merged yet), so the list is the
 * reference, not its length: with versions 1, 2, 5, `--to 3` names no migration and `--to 5`
 * is the last one. Anything else is refused rather than read as "everything" (`abc` was NaN,
 * which applied every migration) or as "stop before it".
 */
export function parseMigrationVersion(value: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const versions = migrations.map((m) => m.version);
  const version = Number(value);
  if (!/^\d{1,9}$/.test(value) || !versions.includes(version)) {
    throw new Error(`must be the version of one of this code's migrations: ${versions.join(', ')}`);
  }
  return version;
}
