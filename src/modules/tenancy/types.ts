import type { Role } from '../../core/context.js';

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface User {
  readonly id: string;
  readonly email: string;
  readonly role: Role;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** Recognisable start and end of the key; the key itself is shown once, at creation. */
  readonly prefix: string;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The secret. Store it now: only its hash is kept. */
  readonly key: string;
}

export interface Session {
  readonly token: string;
  readonly expiresAt: string;
  readonly user: User;
  readonly tenantId: string;
}
