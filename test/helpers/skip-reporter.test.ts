/**
 * The skip reporter names why suites were skipped, one line per suite (or a summary line
 * when a reason skipped many), and prints nothing when nothing was skipped.
 */
import type { TestModule } from 'vitest/node';
import { afterEach, expect, it, vi } from 'vitest';
import SkipReasonReporter from './skip-reporter.js';

const moduleWith = (suites: { name: string; mode: 'run' | 'skip' }[]): TestModule =>
  ({
    children: {
      *allSuites() {
        for (const s of suites) yield { name: s.name, options: { mode: s.mode } };
      },
    },
  }) as unknown as TestModule;

const printed = (modules: TestModule[]): string => {
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  new SkipReasonReporter().onTestRunEnd(modules);
  const out = write.mock.calls.map((c) => String(c[0])).join('');
  write.mockRestore();
  return out;
};

afterEach(() => vi.restoreAllMocks());

it('lists each skipped suite with its reason', () => {
  const out = printed([
    moduleWith([
      { name: 'counters [sqlite]', mode: 'run' },
      { name: 'counters [pgbouncer] (skipped: pgbouncer is not installed (apt-get install -y pgbouncer))', mode: 'skip' },
    ]),
    moduleWith([{ name: 'rls [postgres] (skipped: PostgreSQL is unreachable)', mode: 'skip' }]),
  ]);
  expect(out).toContain('  skipped: counters [pgbouncer] — pgbouncer is not installed (apt-get install -y pgbouncer)\n');
  expect(out).toContain('  skipped: rls [postgres] — PostgreSQL is unreachable\n');
  expect(out).not.toContain('counters [sqlite]');
});

it('summarises a reason that skipped many suites', () => {
  const suites = Array.from({ length: 20 }, (_, i) => ({ name: `s${i} [pgbouncer] (skipped: no pgbouncer)`, mode: 'skip' as const }));
  const out = printed([moduleWith(suites)]);
  expect(out).toContain('  skipped: 20 suites (s0 [pgbouncer], s1 [pgbouncer], s2 [pgbouncer] and 17 more) — no pgbouncer\n');
});

it('prints nothing when nothing was skipped for a reason', () => {
  expect(printed([moduleWith([{ name: 'a [sqlite]', mode: 'run' }, { name: 'plain skip', mode: 'skip' }])])).toBe('');
});
