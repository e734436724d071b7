/**
 * AES-256-GCM for stored secrets (agent secrets), with a keyring for rotation.
 *
 * Keys come from the environment: `AGENTSTORE_ENCRYPTION_KEY` is the current key, which
 * encrypts every new value; `AGENTSTORE_ENCRYPTION_KEYS_OLD` (comma-separated) are earlier
 * ones, still accepted for decryption until `agentstore secrets rotate` has re-encrypted
 * everything under the current key. A key is `<id>:<base64 of 32 bytes>` (the id is stored
 * beside each ciphertext, so a reader knows which key to use), or the base64 alone, whose id
 * is then derived from the key (`k` + 10 hex digits of its SHA-256). `openssl rand -base64 32`
 * makes one.
 *
 * The additional authenticated data binds a ciphertext to its row (tenant, agent, secret
 * name): copied to another row, by a bug or by someone with write access to the table, it
 * fails to decrypt instead of handing one tenant's key to another.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AgentstoreError } from './errors.js';

export interface EncryptionKey {
  readonly id: string;
  /** 32 bytes. */
  readonly key: Uint8Array;
}

export interface EncryptionKeys {
  /** Encrypts every new value. */
  readonly current: EncryptionKey;
  /** Decrypt only: values written before a rotation. */
  readonly old: readonly EncryptionKey[];
}

export const ENCRYPTION_KEY_VARIABLE = 'AGENTSTORE_ENCRYPTION_KEY';
export const OLD_ENCRYPTION_KEYS_VARIABLE = 'AGENTSTORE_ENCRYPTION_KEYS_OLD';

const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/;

/** Base64 (standard or URL-safe, padded or not) decoded strictly: undefined for anything else. */
function decodeBase64(text: string): Buffer | undefined {
  const bare = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/_-]+$/.test(bare)) return undefined;
  // Node's decoder skips what it does not understand; the round trip tells a clean input.
  const bytes = Buffer.from(bare, 'base64');
  const again = bytes.toString('base64').replace(/=+$/, '');
  return again === bare || bytes.toString('base64url') === bare ? bytes : undefined;
}

/**
 * One key in the environment's format. Errors name the variable and the key's position,
 * never the value.
 */
function parseKey(text: string, variable: string, position: string): EncryptionKey {
  const colon = text.indexOf(':');
  const id = colon < 0 ? undefined : text.slice(0, colon).trim();
  const material = (colon < 0 ? text : text.slice(colon + 1)).trim();
  if (id !== undefined && !KEY_ID.test(id)) throw AgentstoreError.config(variable, `${position}: the key id before ":" must be 1-32 letters, digits, _ . -`);
  const key = decodeBase64(material);
  if (!key || key.length !== 32) throw AgentstoreError.config(variable, `${position}: must be base64 of exactly 32 random bytes (openssl rand -base64 32), optionally after "<key id>:"`);
  return { id: id ?? `k${createHash('sha256').update(key).digest('hex').slice(0, 10)}`, key };
}

/** The keyring the environment configures, or undefined without a current key. */
export function parseEncryptionKeys(current: string | undefined, old: string | undefined): EncryptionKeys | undefined {
  if (current === undefined) {
    if (old !== undefined) throw AgentstoreError.config(ENCRYPTION_KEY_VARIABLE, `is required when ${OLD_ENCRYPTION_KEYS_VARIABLE} is set (the old keys only decrypt)`);
    return undefined;
  }
  const key = parseKey(current, ENCRYPTION_KEY_VARIABLE, 'the key');
  const olds = (old ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part, i) => parseKey(part, OLD_ENCRYPTION_KEYS_VARIABLE, `key ${i + 1}`));
  const seen = new Map<string, Uint8Array>([[key.id, key.key]]);
  for (const k of olds) {
    const other = seen.get(k.id);
    // The same key listed twice is harmless; two keys under one id would make ciphertexts ambiguous.
    if (other && !Buffer.from(other).equals(k.key)) throw AgentstoreError.config(OLD_ENCRYPTION_KEYS_VARIABLE, `two different keys have the id "${k.id}"`);
    seen.set(k.id, k.key);
  }
  return { current: key, old: olds.filter((k) => k.id !== key.id) };
}

/** What is stored for one secret: base64 text, the same on both backends. */
export interface SealedSecret {
  readonly keyId: string;
  readonly nonce: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** The AAD of a secret: the row it belongs to. */
// Uint8Array, not Buffer: the package's public types need no @types/node.
export function secretAad(tenantId: string, agentId: string, name: string): Uint8Array {
  return Buffer.from(`agentstore:agent-secret:v1\u0000${tenantId}\u0000${agentId}\u0000${name}`, 'utf8');
}

export function seal(keys: EncryptionKeys, aad: Uint8Array, value: string): SealedSecret {
  // 96-bit random nonces: NIST's bound for random GCM nonces is 2^32 encryptions per key,
  // far beyond the secrets one key encrypts between rotations.
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.current.key, nonce);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return { keyId: keys.current.id, nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

export function keyById(keys: EncryptionKeys, id: string): EncryptionKey | undefined {
  return keys.current.id === id ? keys.current : keys.old.find((k) => k.id === id);
}

export function open(keys: EncryptionKeys, aad: Uint8Array, sealed: SealedSecret): string {
  const key = keyById(keys, sealed.keyId);
  if (!key) {
    throw AgentstoreError.notConfigured(OLD_ENCRYPTION_KEYS_VARIABLE, `the secret is encrypted under key "${sealed.keyId}", which is not configured`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.nonce, 'base64'));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
  } catch (cause) {
    // A wrong key under the right id, a changed row, or a ciphertext of another row (the AAD).
    throw new AgentstoreError('agentstore.internal', 'the stored secret failed authentication: it was altered, or belongs to another secret', {}, { cause });
  }
}

/** One line for the start-up description: the key ids, never the keys. */
export function describeKeys(keys: EncryptionKeys | undefined): string {
  if (!keys) return `secrets: no encryption key (${ENCRYPTION_KEY_VARIABLE} unset): agent secret writes and reveals are refused`;
  return `secrets: AES-256-GCM, current key "${keys.current.id}"${keys.old.length > 0 ? `, old keys ${keys.old.map((k) => `"${k.id}"`).join(', ')} (decrypt only)` : ''}`;
}
