/**
 * A vitest reporter that ends the run with why suites were skipped. `forEachBackend` names a
 * block whose backend is missing `<title> [<backend>] (skipped: <reason>)`; the default
 * reporter only counts skipped tests, so without `--reporter=verbose` nobody saw that, say,
 * every pgbouncer suite was skipped because pgbouncer is not installed. Registered in
 * vitest.config.ts after the default reporter.
 */
import type { Reporter, TestModule } from 'vitest/node';

const SKIPPED = /^(.*) \(skipped: (.*)\)$/;
// More suites than this for one reason are summarised, not listed.
const LISTED = 8;

export default class SkipReasonReporter implements Reporter {
  onTestRunEnd(testModules: readonly TestModule[]): void {
    const byReason = new Map<string, string[]>();
    for (const module of testModules) {
      for (const suite of module.children.allSuites()) {
        const match = SKIPPED.exec(suite.name);
        if (!match || suite.options.mode !== 'skip') continue;
        const [, title = suite.name, reason = 'unknown'] = match;
        byReason.set(reason, [...(byReason.get(reason) ?? []), title]);
      }
    }
    if (byReason.size === 0) return;
    const lines = ['', 'Skipped suites (a backend is unavailable; CI=true makes this a failure):'];
    for (const [reason, titles] of byReason) {
      if (titles.length <= LISTED) {
        for (const title of titles) lines.push(`  skipped: ${title} — ${reason}`);
      } else {
        const shown = titles.slice(0, 3).join(', ');
        lines.push(`  skipped: ${titles.length} suites (${shown} and ${titles.length - 3} more) — ${reason}`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
