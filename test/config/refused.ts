import { loadConfig, type Env } from '../../src/config/env.js';

/** The variable a config error names, or undefined when the environment loads. */
export function refused(env: Env): string | undefined {
  try {
    loadConfig(env);
    return undefined;
  } catch (error) {
    return (error as { context?: { variable?: string } }).context?.variable ?? `not a config error: ${String(error)}`;
  }
}
