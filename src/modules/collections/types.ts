export type JsonObject = { [key: string]: unknown };

export interface StoredRecord {
  readonly id: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly data: JsonObject;
}

export interface Collection {
  readonly name: string;
  /** JSON Schema (draft 2020-12 subset supported by Ajv) every record must satisfy, or null. */
  readonly schema: JsonObject | null;
  /** Data paths with an expression index. */
  readonly indexes: readonly string[];
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** `If-Match`: a version number, or `*` for "exists". */
export type Precondition = number | '*';

export interface ListRecordsOptions {
  /** The filter as JSON text (as in the query string) or an already-parsed object. */
  readonly filter?: string | JsonObject;
  readonly sort?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface CreateRecordResult {
  readonly record: StoredRecord;
  /** True when an Idempotency-Key matched an earlier request and its result was returned. */
  readonly replayed: boolean;
}
