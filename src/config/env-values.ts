/** Reading single environment variables: the first of several names, integers, booleans, choices. */
import { AgentstoreError } from '../core/errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads the first of several names (the agentstore name, then seed-era aliases). */
export function pick(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
  }
  return undefined;
}

export function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = pick(env, name);
  if (!raw) return fallback;
  // Decimal digits only: Number() would also take "0x1F90", "1e3" and "0b11".
  const value = /^-?\d+$/.test(raw.value) ? Number(raw.value) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw AgentstoreError.config(name, `must be an integer from ${min} to ${max}, got "${raw.value}"`);
  }
  return value;
}

export function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = pick(env, name);
  if (!raw) return fallback;
  const value = raw.value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw AgentstoreError.config(name, `must be true or false, got "${raw.value}"`);
}

export function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = pick(env, name);
  if (!raw) return fallback;
  const value = raw.value.toLowerCase() as T;
  if (!allowed.includes(value)) {
    throw AgentstoreError.config(name, `must be one of ${allowed.join(', ')}, got "${raw.value}"`);
  }
  return value;
}
