import { Algorithm, hash, verify } from '@node-rs/argon2';
import { AgentstoreError } from '../../core/errors.js';

// OWASP's argon2id baseline (m=19 MiB, t=2, p=1): ~150 ms here, cheap enough for logins,
// costly for an offline guesser.
const options = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function validatePassword(password: unknown, field = '/password'): string {
  if (typeof password !== 'string' || password.length < 8 || password.length > 256) {
    throw AgentstoreError.invalidField(field, 'must be a string of 8 to 256 characters');
  }
  return password;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

// Verified against when the account does not exist, so that a wrong email costs the same
// time as a wrong password and response times do not reveal which accounts exist.
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword('agentstore-dummy-password');
  return dummyHash;
}
