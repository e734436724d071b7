/**
 * File storage from the environment: `STORAGE_BACKEND=local|s3` and the `S3_*` variables, and
 * the seed-era names where they mean the same (`BHIV_STORAGE_BACKEND`, `USE_S3_STORAGE`,
 * `USE_SUPABASE_STORAGE`, `S3_BUCKET_NAME`, `SUPABASE_BUCKET_NAME`, `BHIV_BUCKET_PATH`,
 * `CLOUDFRONT_DOMAIN`). docs/operations.md, "File storage", is the reference.
 *
 * The seed had a fallback chain (Supabase, then S3, then the local folder); agentstore uses
 * exactly one backend, so settings that pick two different ones are refused, naming both,
 * rather than one of them winning silently. A `false` seed flag (`USE_S3_STORAGE=false`)
 * picks nothing, as it picked nothing in the seed's chain.
 */
import path from 'node:path';
import { AgentstoreError } from '../core/errors.js';
import { defaultFilesDir, type StorageConfig } from './config.js';
import { boolean, integer, pick, type Env } from './env-values.js';

const MIB = 1024 * 1024;

interface Choice {
  readonly variable: string;
  readonly value: string;
  readonly kind: 'local' | 's3';
  /** `supabase` and `plain` S3 need different endpoints; `any` (STORAGE_BACKEND=s3) is either. */
  readonly flavour: 'any' | 'plain' | 'supabase';
}

function choices(env: Env): Choice[] {
  const out: Choice[] = [];
  const backend = pick(env, 'STORAGE_BACKEND');
  if (backend) {
    const value = backend.value.toLowerCase();
    if (value !== 'local' && value !== 's3') throw AgentstoreError.config('STORAGE_BACKEND', `must be local or s3, got "${backend.value}"`);
    out.push({ variable: 'STORAGE_BACKEND', value, kind: value, flavour: 'any' });
  }
  const seed = pick(env, 'BHIV_STORAGE_BACKEND');
  if (seed) {
    const value = seed.value.toLowerCase();
    if (!['local', 's3', 'minio', 'supabase'].includes(value)) {
      throw AgentstoreError.config('BHIV_STORAGE_BACKEND', `must be one of supabase, s3, minio, local, got "${seed.value}"`);
    }
    out.push({ variable: 'BHIV_STORAGE_BACKEND', value, kind: value === 'local' ? 'local' : 's3', flavour: value === 'supabase' ? 'supabase' : 'plain' });
  }
  if (boolean(env, 'USE_S3_STORAGE', false)) out.push({ variable: 'USE_S3_STORAGE', value: 'true', kind: 's3', flavour: 'plain' });
  if (boolean(env, 'USE_SUPABASE_STORAGE', false)) out.push({ variable: 'USE_SUPABASE_STORAGE', value: 'true', kind: 's3', flavour: 'supabase' });
  return out;
}

/** The one backend the settings agree on; two that disagree are refused, naming both. */
function chosen(env: Env): Choice | undefined {
  const all = choices(env);
  for (const a of all) {
    for (const b of all) {
      const clash = a.kind !== b.kind || (a.flavour === 'plain' && b.flavour === 'supabase');
      if (!clash) continue;
      throw new AgentstoreError(
        'agentstore.config',
        `${a.variable}=${a.value} and ${b.variable}=${b.value} choose different storage backends; agentstore uses one: set only one of them`,
        { variable: a.variable, variables: [a.variable, b.variable] },
      );
    }
  }
  return all.find((c) => c.flavour === 'supabase') ?? all[0];
}

function httpUrl(variable: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw AgentstoreError.config(variable, 'must be an http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw AgentstoreError.config(variable, 'must be an http(s) URL');
  // Credentials have their own variables, which are redacted in logs; a URL's are not kept apart.
  if (url.username || url.password) throw AgentstoreError.config(variable, 'must not carry credentials: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  if (url.search || url.hash) throw AgentstoreError.config(variable, 'must not have a query or a fragment');
  return url;
}

const withoutTrailingSlash = (url: URL): string => `${url.origin}${url.pathname.replace(/\/+$/, '')}`;

function publicBaseUrl(env: Env): string | undefined {
  const raw = pick(env, 'STORAGE_PUBLIC_BASE_URL', 'CLOUDFRONT_DOMAIN');
  if (!raw) return undefined;
  // The seed's CLOUDFRONT_DOMAIN is a bare host name (d1234.cloudfront.net).
  const value = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw.value) ? raw.value : `https://${raw.value}`;
  return withoutTrailingSlash(httpUrl(raw.name, value));
}

function keyPrefix(env: Env): string | undefined {
  const raw = pick(env, 'S3_PREFIX');
  if (!raw) return undefined;
  const trimmed = raw.value.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return undefined;
  if (/[\\\0]/.test(trimmed) || trimmed.split('/').some((s) => s === '' || s === '.' || s === '..') || Buffer.byteLength(trimmed) > 512) {
    throw AgentstoreError.config('S3_PREFIX', 'must be /-separated names without empty, "." or ".." parts, at most 512 bytes');
  }
  return `${trimmed}/`;
}

function s3Config(env: Env, choice: Choice, maxUploadBytes: number, publicBase: string | undefined): StorageConfig {
  const reason = `${choice.variable}=${choice.value}`;
  const bucket = pick(env, 'S3_BUCKET', 'S3_BUCKET_NAME', 'SUPABASE_BUCKET_NAME');
  if (!bucket) throw AgentstoreError.config('S3_BUCKET', `is required with ${reason}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(bucket.value)) {
    throw AgentstoreError.config(bucket.name, 'must be 3 to 255 letters, digits, ".", "-" or "_", starting and ending with a letter or digit');
  }
  const region = pick(env, 'S3_REGION', 'AWS_REGION');
  if (region && !/^[a-z0-9-]{1,64}$/.test(region.value)) throw AgentstoreError.config(region.name, `is not a region name: "${region.value}"`);
  let endpoint: string | undefined;
  const endpointVar = pick(env, 'S3_ENDPOINT_URL');
  if (endpointVar) endpoint = withoutTrailingSlash(httpUrl('S3_ENDPOINT_URL', endpointVar.value));
  else if (choice.flavour === 'supabase') {
    // Supabase Storage's S3-compatible endpoint is a path of the project's URL.
    const project = pick(env, 'SUPABASE_URL');
    if (!project) throw AgentstoreError.config('S3_ENDPOINT_URL', `is required with ${reason} (or set SUPABASE_URL, and it is derived)`);
    endpoint = `${httpUrl('SUPABASE_URL', project.value).origin}/storage/v1/s3`;
  }
  const accessKeyId = pick(env, 'AWS_ACCESS_KEY_ID')?.value;
  const secretAccessKey = pick(env, 'AWS_SECRET_ACCESS_KEY')?.value;
  const sessionToken = pick(env, 'AWS_SESSION_TOKEN')?.value;
  if (accessKeyId && !secretAccessKey) throw AgentstoreError.config('AWS_SECRET_ACCESS_KEY', 'is required with AWS_ACCESS_KEY_ID');
  if (secretAccessKey && !accessKeyId) throw AgentstoreError.config('AWS_ACCESS_KEY_ID', 'is required with AWS_SECRET_ACCESS_KEY');
  if (sessionToken && !accessKeyId) throw AgentstoreError.config('AWS_ACCESS_KEY_ID', 'is required with AWS_SESSION_TOKEN');
  const sseRaw = pick(env, 'S3_SSE');
  let serverSideEncryption: 'AES256' | 'aws:kms' | undefined;
  if (sseRaw) {
    const value = sseRaw.value.toLowerCase();
    if (value === 'aes256') serverSideEncryption = 'AES256';
    else if (value === 'aws:kms') serverSideEncryption = 'aws:kms';
    else throw AgentstoreError.config('S3_SSE', `must be AES256 or aws:kms, got "${sseRaw.value}"`);
  }
  const kmsKeyId = pick(env, 'S3_SSE_KMS_KEY_ID')?.value;
  if (kmsKeyId && serverSideEncryption !== 'aws:kms') throw AgentstoreError.config('S3_SSE_KMS_KEY_ID', 'needs S3_SSE=aws:kms');
  const prefix = keyPrefix(env);
  return {
    kind: 's3',
    bucket: bucket.value,
    // us-east-1 is what MinIO and Supabase accept by default, and R2 accepts it for "auto".
    region: region?.value ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    // Virtual-hosted buckets need DNS per bucket, which self-hosted stores rarely have.
    forcePathStyle: boolean(env, 'S3_FORCE_PATH_STYLE', endpoint !== undefined),
    ...(accessKeyId ? { accessKeyId } : {}),
    ...(secretAccessKey ? { secretAccessKey } : {}),
    ...(sessionToken ? { sessionToken } : {}),
    ...(serverSideEncryption ? { serverSideEncryption } : {}),
    ...(kmsKeyId ? { kmsKeyId } : {}),
    ...(prefix ? { prefix } : {}),
    maxUploadBytes,
    ...(publicBase ? { publicBaseUrl: publicBase } : {}),
  };
}

/** `StoreConfig.storage` from the environment; `dataDir` is where the local default lives. */
export function storageConfig(env: Env, dataDir: string): StorageConfig {
  const choice = chosen(env);
  const maxUploadBytes = integer(env, 'MAX_UPLOAD_SIZE_MB', 100, 1, 1024 * 1024) * MIB;
  const publicBase = publicBaseUrl(env);
  if (choice?.kind === 's3') return s3Config(env, choice, maxUploadBytes, publicBase);
  const dir = pick(env, 'AGENTSTORE_FILES_DIR', 'BHIV_BUCKET_PATH');
  return {
    kind: 'local',
    dir: dir ? path.resolve(dir.value) : defaultFilesDir(dataDir),
    maxUploadBytes,
    ...(publicBase ? { publicBaseUrl: publicBase } : {}),
  };
}

const megabytes = (bytes: number): string => `${Math.round((bytes / MIB) * 100) / 100} MB`;

/** The start-log line for file storage: secrets never appear, the access key id only by its last 4 characters (and not at all when short). */
export function describeStorage(storage: StorageConfig): string {
  const tail = `uploads up to ${megabytes(storage.maxUploadBytes)}${storage.publicBaseUrl ? `, public files at ${storage.publicBaseUrl}` : ''}`;
  if (storage.kind === 'local') return `storage: local ${storage.dir} (${tail})`;
  const credentials = storage.accessKeyId
    ? `key ***${storage.accessKeyId.length >= 12 ? storage.accessKeyId.slice(-4) : ''}, secret ***${storage.sessionToken ? ', session token ***' : ''}`
    : 'credentials from the AWS default chain';
  const parts = [
    storage.endpoint ? `endpoint ${storage.endpoint}` : 'AWS endpoint',
    `region ${storage.region}`,
    storage.forcePathStyle ? 'path-style' : 'virtual-hosted',
    credentials,
    ...(storage.serverSideEncryption ? [`SSE ${storage.serverSideEncryption}${storage.kmsKeyId ? ` key ${storage.kmsKeyId}` : ''}`] : []),
    tail,
  ];
  return `storage: s3 bucket ${storage.bucket}${storage.prefix ? ` prefix ${storage.prefix}` : ''} (${parts.join(', ')})`;
}
