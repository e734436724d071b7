/** The JWT rules from the environment: time defaults, accepted values, refusals naming the variable. */
import { describe, expect, it } from 'vitest';
import { describeBackends, loadConfig } from '../../src/config/env.js';
import { refused } from './refused.js';

const SECRET = { AGENTSTORE_JWT_SECRET: 's'.repeat(32) };


describe('JWT rules from the environment', () => {
  it('default to exp required, 30 s of skew and a 24 h lifetime, shown in the start log', () => {
    const jwt = loadConfig(SECRET).store.auth.jwt;
    expect(jwt).toMatchObject({ requireExp: true, clockSkewSeconds: 30, maxLifetimeSeconds: 86_400 });
    expect(describeBackends(loadConfig(SECRET).store).join('\n')).toMatch(/exp required, clock skew 30 s, max lifetime 86400 s/);
  });

  it('take the configured values', () => {
    const jwt = loadConfig({ ...SECRET, AGENTSTORE_JWT_REQUIRE_EXP: 'false', AGENTSTORE_JWT_CLOCK_SKEW_SECONDS: '0', AGENTSTORE_JWT_MAX_LIFETIME_SECONDS: '3600' }).store.auth.jwt;
    expect(jwt).toMatchObject({ requireExp: false, clockSkewSeconds: 0, maxLifetimeSeconds: 3600 });
  });

  const cases: Array<[string, string]> = [
    ['AGENTSTORE_JWT_REQUIRE_EXP', 'sometimes'],
    ['AGENTSTORE_JWT_CLOCK_SKEW_SECONDS', '-1'],
    ['AGENTSTORE_JWT_CLOCK_SKEW_SECONDS', '601'],
    ['AGENTSTORE_JWT_CLOCK_SKEW_SECONDS', '30s'],
    ['AGENTSTORE_JWT_MAX_LIFETIME_SECONDS', '59'],
    ['AGENTSTORE_JWT_MAX_LIFETIME_SECONDS', '31536001'],
    ['AGENTSTORE_JWT_MAX_LIFETIME_SECONDS', '1e5'],
  ];
  it.each(cases)('%s=%s is refused, naming the variable, with or without a JWT issuer configured', (name, value) => {
    expect(refused({ ...SECRET, [name]: value })).toBe(name);
    expect(refused({ [name]: value })).toBe(name);
  });

  it('refuse a tenant or role claim that the token’s own user writes (Supabase user_metadata); app_metadata is fine', () => {
    expect(refused({ ...SECRET, AGENTSTORE_JWT_TENANT_CLAIM: 'user_metadata.tenant_id' })).toBe('AGENTSTORE_JWT_TENANT_CLAIM');
    expect(refused({ ...SECRET, AGENTSTORE_JWT_ROLE_CLAIM: 'user_metadata.role' })).toBe('AGENTSTORE_JWT_ROLE_CLAIM');
    expect(refused({ ...SECRET, AGENTSTORE_JWT_TENANT_CLAIM: 'app_metadata.tenant_id', AGENTSTORE_JWT_ROLE_CLAIM: 'app_metadata.role' })).toBeUndefined();
    // The user's own name for themselves is fine as the user id.
    expect(refused({ ...SECRET, AGENTSTORE_JWT_USER_CLAIM: 'user_metadata.handle' })).toBeUndefined();
  });
});
