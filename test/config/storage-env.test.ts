import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeBackends, loadConfig, type Env } from '../../src/config/env.js';
import { resolveStoreConfig } from '../../src/store.js';
import { refused } from './refused.js';

const storage = (env: Env) => loadConfig(env).store.storage;
const s3 = { STORAGE_BACKEND: 's3', S3_BUCKET: 'agent-files' };

describe('file storage configuration', () => {
  it('defaults to the local disk under the data dir, 100 MB uploads', () => {
    expect(storage({ AGENTSTORE_DATA_DIR: '/srv/agentstore' })).toEqual({ kind: 'local', dir: '/srv/agentstore/files', maxUploadBytes: 100 * 1024 * 1024 });
    expect(storage({ MAX_UPLOAD_SIZE_MB: '5' }).maxUploadBytes).toBe(5 * 1024 * 1024);
  });

  it('a library data dir moves the local default with it; an explicit storage wins', () => {
    expect(resolveStoreConfig({ dataDir: '/tmp/lib-data' }, {}).storage).toMatchObject({ kind: 'local', dir: '/tmp/lib-data/files' });
    const explicit = { kind: 'local' as const, dir: '/elsewhere', maxUploadBytes: 10 };
    expect(resolveStoreConfig({ dataDir: '/tmp/lib-data', storage: explicit }, {}).storage).toBe(explicit);
  });

  it('takes the local directory from AGENTSTORE_FILES_DIR or the seed’s BHIV_BUCKET_PATH', () => {
    expect(storage({ BHIV_BUCKET_PATH: 'bucket' })).toMatchObject({ kind: 'local', dir: path.resolve('bucket') });
    expect(storage({ AGENTSTORE_FILES_DIR: '/a', BHIV_BUCKET_PATH: '/b' })).toMatchObject({ dir: '/a' });
    expect(storage({ BHIV_STORAGE_BACKEND: 'local', BHIV_BUCKET_PATH: '/b' })).toMatchObject({ kind: 'local', dir: '/b' });
  });

  it('AWS S3: bucket and region, the SDK’s credential chain, virtual-hosted by default', () => {
    expect(storage({ ...s3, AWS_REGION: 'eu-west-1' })).toEqual({
      kind: 's3',
      bucket: 'agent-files',
      region: 'eu-west-1',
      forcePathStyle: false,
      maxUploadBytes: 100 * 1024 * 1024,
    });
  });

  it('MinIO and R2: an endpoint makes path-style the default; every S3 setting is read', () => {
    const config = storage({
      ...s3,
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000/',
      S3_REGION: 'auto',
      AWS_ACCESS_KEY_ID: 'minioadmin',
      AWS_SECRET_ACCESS_KEY: 'minio-secret',
      AWS_SESSION_TOKEN: 'token',
      S3_SSE: 'aws:kms',
      S3_SSE_KMS_KEY_ID: 'alias/agentstore',
      S3_PREFIX: '/agentstore/prod/',
      MAX_UPLOAD_SIZE_MB: '2048',
      CLOUDFRONT_DOMAIN: 'd1234.cloudfront.net',
    });
    expect(config).toEqual({
      kind: 's3',
      bucket: 'agent-files',
      region: 'auto',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      accessKeyId: 'minioadmin',
      secretAccessKey: 'minio-secret',
      sessionToken: 'token',
      serverSideEncryption: 'aws:kms',
      kmsKeyId: 'alias/agentstore',
      prefix: 'agentstore/prod/',
      maxUploadBytes: 2048 * 1024 * 1024,
      publicBaseUrl: 'https://d1234.cloudfront.net',
    });
    expect(storage({ ...s3, S3_ENDPOINT_URL: 'http://minio:9000', S3_FORCE_PATH_STYLE: 'false' })).toMatchObject({ forcePathStyle: false });
    expect(storage({ ...s3, S3_SSE: 'aes256' })).toMatchObject({ serverSideEncryption: 'AES256' });
  });

  it('the seed’s names choose S3 and name its bucket', () => {
    expect(storage({ USE_S3_STORAGE: 'true', S3_BUCKET_NAME: 'seed-bucket' })).toMatchObject({ kind: 's3', bucket: 'seed-bucket' });
    expect(storage({ BHIV_STORAGE_BACKEND: 'minio', S3_BUCKET_NAME: 'seed-bucket', S3_ENDPOINT_URL: 'http://minio:9000' })).toMatchObject({
      kind: 's3',
      forcePathStyle: true,
    });
    expect(storage({ USE_S3_STORAGE: 'false', USE_SUPABASE_STORAGE: 'false' })).toMatchObject({ kind: 'local' });
  });

  it('Supabase Storage: the S3 endpoint is derived from SUPABASE_URL, path-style', () => {
    const env = { BHIV_STORAGE_BACKEND: 'supabase', SUPABASE_URL: 'https://abcdefgh.supabase.co/', SUPABASE_BUCKET_NAME: 'uploads' };
    expect(storage(env)).toMatchObject({ kind: 's3', bucket: 'uploads', endpoint: 'https://abcdefgh.supabase.co/storage/v1/s3', forcePathStyle: true });
    expect(storage({ ...env, BHIV_STORAGE_BACKEND: undefined, USE_SUPABASE_STORAGE: 'true' })).toMatchObject({
      endpoint: 'https://abcdefgh.supabase.co/storage/v1/s3',
    });
    // STORAGE_BACKEND=s3 agrees with a Supabase choice; an explicit endpoint wins over the derived one.
    expect(storage({ ...env, STORAGE_BACKEND: 's3', S3_ENDPOINT_URL: 'https://x.supabase.co/storage/v1/s3' })).toMatchObject({
      endpoint: 'https://x.supabase.co/storage/v1/s3',
    });
  });

  it('refuses settings that choose two backends, naming both', () => {
    const clash = (env: Env): { variable?: string; variables?: string[]; message: string } => {
      try {
        loadConfig(env);
      } catch (error) {
        const e = error as { code: string; message: string; context: { variable?: string; variables?: string[] } };
        expect(e.code).toBe('agentstore.config');
        return { ...e.context, message: e.message };
      }
      throw new Error('loaded');
    };
    const both = clash({ USE_S3_STORAGE: 'true', STORAGE_BACKEND: 'local', S3_BUCKET: 'b-b-b' });
    expect(both.variables?.sort()).toEqual(['STORAGE_BACKEND', 'USE_S3_STORAGE']);
    expect(both.message).toContain('USE_S3_STORAGE');
    expect(both.message).toContain('STORAGE_BACKEND');
    expect(clash({ BHIV_STORAGE_BACKEND: 'local', STORAGE_BACKEND: 's3' }).variables?.sort()).toEqual(['BHIV_STORAGE_BACKEND', 'STORAGE_BACKEND']);
    expect(clash({ USE_S3_STORAGE: 'true', USE_SUPABASE_STORAGE: 'true' }).variables?.sort()).toEqual(['USE_S3_STORAGE', 'USE_SUPABASE_STORAGE']);
    expect(clash({ BHIV_STORAGE_BACKEND: 'minio', USE_SUPABASE_STORAGE: 'yes' }).variables?.sort()).toEqual(['BHIV_STORAGE_BACKEND', 'USE_SUPABASE_STORAGE']);
  });

  // Each wrong setting, refused at load naming the variable to fix.
  const cases: Array<[string, Env]> = [
    ['STORAGE_BACKEND', { STORAGE_BACKEND: 'gcs' }],
    ['BHIV_STORAGE_BACKEND', { BHIV_STORAGE_BACKEND: 'dropbox' }],
    ['USE_S3_STORAGE', { USE_S3_STORAGE: 'maybe' }],
    ['MAX_UPLOAD_SIZE_MB', { MAX_UPLOAD_SIZE_MB: '0' }],
    ['MAX_UPLOAD_SIZE_MB', { MAX_UPLOAD_SIZE_MB: '1.5' }],
    ['S3_BUCKET', { STORAGE_BACKEND: 's3' }],
    ['S3_BUCKET', { ...s3, S3_BUCKET: 'a/b' }],
    ['S3_BUCKET_NAME', { USE_S3_STORAGE: '1', S3_BUCKET_NAME: 'x' }],
    ['S3_REGION', { ...s3, S3_REGION: 'EU West' }],
    ['S3_ENDPOINT_URL', { ...s3, S3_ENDPOINT_URL: 'minio:9000' }],
    ['S3_ENDPOINT_URL', { ...s3, S3_ENDPOINT_URL: 'http://key:secret@minio:9000' }],
    ['S3_ENDPOINT_URL', { BHIV_STORAGE_BACKEND: 'supabase', SUPABASE_BUCKET_NAME: 'uploads' }],
    ['SUPABASE_URL', { USE_SUPABASE_STORAGE: 'true', SUPABASE_BUCKET_NAME: 'uploads', SUPABASE_URL: 'not a url' }],
    ['S3_FORCE_PATH_STYLE', { ...s3, S3_FORCE_PATH_STYLE: 'sometimes' }],
    ['AWS_SECRET_ACCESS_KEY', { ...s3, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' }],
    ['AWS_ACCESS_KEY_ID', { ...s3, AWS_SECRET_ACCESS_KEY: 'secret' }],
    ['AWS_ACCESS_KEY_ID', { ...s3, AWS_SESSION_TOKEN: 'token' }],
    ['S3_SSE', { ...s3, S3_SSE: 'rot13' }],
    ['S3_SSE_KMS_KEY_ID', { ...s3, S3_SSE_KMS_KEY_ID: 'alias/x' }],
    ['S3_SSE_KMS_KEY_ID', { ...s3, S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'alias/x' }],
    ['S3_PREFIX', { ...s3, S3_PREFIX: 'a/../b' }],
    ['S3_PREFIX', { ...s3, S3_PREFIX: 'a//b' }],
    ['CLOUDFRONT_DOMAIN', { CLOUDFRONT_DOMAIN: 'cdn.example.com/?x=1' }],
    ['STORAGE_PUBLIC_BASE_URL', { STORAGE_PUBLIC_BASE_URL: 'ftp://cdn.example.com' }],
  ];
  it.each(cases)('refuses a wrong %s', (variable, env) => {
    expect(refused(env)).toBe(variable);
  });

  it('one start-log line for storage, with every secret redacted', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY';
    const token = 'IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQD-session-token';
    const lines = describeBackends(
      loadConfig({
        ...s3,
        S3_ENDPOINT_URL: 'https://acc.r2.cloudflarestorage.com',
        S3_REGION: 'auto',
        AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_SESSION_TOKEN: token,
      }).store,
    );
    const line = lines.filter((l) => l.startsWith('storage:'));
    expect(line).toHaveLength(1);
    expect(line[0]).toBe(
      'storage: s3 bucket agent-files (endpoint https://acc.r2.cloudflarestorage.com, region auto, path-style, key ***MPLE, secret ***, session token ***, uploads up to 100 MB)',
    );
    const all = lines.join('\n');
    for (const hidden of [secret, token, 'AKIAIOSFODNN7', secret.slice(0, 8), token.slice(0, 12)]) expect(all).not.toContain(hidden);
    expect(describeBackends(loadConfig({ AGENTSTORE_DATA_DIR: '/srv/a' }).store)).toContain('storage: local /srv/a/files (uploads up to 100 MB)');
  });
});
