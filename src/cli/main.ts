import { Command, InvalidArgumentError } from 'commander';
import { isAgentstoreError } from '../core/errors.js';
import { DEFAULT_API_KEY_ROLE } from '../modules/tenancy/role-rules.js';
import { parseMigrationVersion } from './migrate-args.js';

// The argument parser only: what a command does is loaded once its arguments parsed
// (commands.ts, and serve.ts with the HTTP server).
const run = async () => import('./commands.js');

const program = new Command()
  .name('agentstore')
  .description('agentstore: storage backend for AI-agent platforms')
  .showHelpAfterError();

program
  .command('serve')
  .description('start the HTTP server (configured by the environment)')
  .action(async () => (await import('./serve.js')).serve());

const migrate = program.command('migrate').description('schema migrations');
migrate
  .command('status')
  .description('applied and pending migrations')
  .action(async () => (await run()).migrateStatusCommand());
migrate
  .command('plan')
  .description('print the SQL that `migrate up` would run')
  .action(async () => (await run()).migratePlanCommand());
migrate
  .command('up')
  .description('apply pending migrations, each in its own transaction')
  .option('--to <version>', 'stop at this version', (value: string) => {
    try {
      return parseMigrationVersion(value);
    } catch (error) {
      // Commander names the option and the value in front of the reason.
      throw new InvalidArgumentError((error as Error).message);
    }
  })
  .action(async (opts: { to?: number }) => (await run()).migrateUpCommand(opts.to));

program
  .command('status')
  .description('backends, schema version and row counts (reads only: creates and migrates nothing)')
  .action(async () => (await run()).statusCommand());

const tenants = program.command('tenants').description('tenants');
tenants
  .command('create <name>')
  .description('create a tenant')
  .action(async (name: string) => (await run()).tenantsCreateCommand(name));
tenants
  .command('list')
  .description('list tenants')
  .option('--limit <n>', 'page size', '100')
  .action(async (opts: { limit: string }) => (await run()).tenantsListCommand(opts.limit));

const keys = program.command('keys').description("a tenant's API keys");
keys
  .command('create')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--name <name>', 'a name to recognise the key by')
  .option('--role <role>', 'owner | admin | member | viewer (admin and owner manage keys, users and collections)', DEFAULT_API_KEY_ROLE)
  .description('create an API key; the secret is printed once')
  .action(async (opts: { tenant: string; name: string; role: string }) => (await run()).keysCreateCommand(opts));
keys
  .command('list')
  .requiredOption('--tenant <id>', 'tenant id')
  .description('list API keys (never their secrets)')
  .action(async (opts: { tenant: string }) => (await run()).keysListCommand(opts.tenant));
keys
  .command('revoke <keyId>')
  .requiredOption('--tenant <id>', 'tenant id')
  .description('revoke an API key')
  .action(async (keyId: string, opts: { tenant: string }) => (await run()).keysRevokeCommand(keyId, opts.tenant));

const secrets = program.command('secrets').description('agent secrets');
secrets
  .command('rotate')
  .description(
    're-encrypt every agent secret under AGENTSTORE_ENCRYPTION_KEY, in batches, while servers keep running with the old key in AGENTSTORE_ENCRYPTION_KEYS_OLD; safe to run again or after an interruption',
  )
  .option('--batch-size <n>', 'secrets per transaction (1-1000)', (value: string) => {
    const n = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= 1 && n <= 1000)) throw new InvalidArgumentError('must be an integer from 1 to 1000');
    return n;
  }, 100)
  .action(async (opts: { batchSize: number }) => (await run()).secretsRotateCommand(opts.batchSize));

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`agentstore: ${isAgentstoreError(error) ? error.message : error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
