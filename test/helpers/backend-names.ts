/**
 * The SQL backends the suites run on, and the environment that narrows them. Kept free of
 * vitest imports so the globalSetup (which runs in the main process) can use it too.
 */
export const ALL_BACKENDS = ['sqlite', 'postgres', 'pgbouncer'] as const;
export type BackendName = (typeof ALL_BACKENDS)[number];

/** What the globalSetup found out about the backends that need a service. */
export interface BackendAvailability {
  readonly available: boolean;
  /** Why it cannot be used (shown in the skipped suite's title, or as the failure under CI). */
  readonly reason?: string;
}

export interface ProvidedBackends {
  readonly postgres: BackendAvailability;
  readonly pgbouncer: BackendAvailability & { readonly port?: number };
}

/** `AGENTSTORE_TEST_BACKENDS=sqlite,postgres` narrows the list; unset means all. */
export function selectedBackends(env: NodeJS.ProcessEnv = process.env): BackendName[] {
  const raw = env.AGENTSTORE_TEST_BACKENDS?.trim();
  if (!raw) return [...ALL_BACKENDS];
  const names = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const unknown = names.filter((n) => !(ALL_BACKENDS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(`AGENTSTORE_TEST_BACKENDS: unknown backend(s) ${unknown.join(', ')} (known: ${ALL_BACKENDS.join(', ')})`);
  }
  return ALL_BACKENDS.filter((b) => names.includes(b));
}

/** Under CI a backend that cannot run is a failure, not a skip. */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

declare module 'vitest' {
  export interface ProvidedContext {
    agentstoreBackends: ProvidedBackends;
  }
}
