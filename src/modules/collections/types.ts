export type JsonObject = { [key: string]: unknown };

export interface StoredRecord {
  readonly id: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** When the record expires (ISO-8601 UTC); absent when it never does. Expired records are absent from every read. */
  readonly expiresAt?: string;
  readonly data: JsonObject;
}

export interface Collection {
  readonly name: string;
  /** JSON Schema (draft 2020-12 subset supported by Ajv) every record must satisfy, or null. */
  readonly schema: JsonObject | null;
  /** Data paths with an expression index. */
  readonly indexes: readonly string[];
  /** The TTL in seconds of records written without an expiry of their own, or null for none. */
  readonly ttlSeconds: number | null;
  /** The data field (one of `indexes`) that holds the id of the end user a record belongs to, for erasing an end user; or null. */
  readonly endUserField: string | null;
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
  /** Only these data fields (`"title,owner.id"` or a list); see `GetRecordOptions.fields`. */
  readonly fields?: string | readonly string[];
}

export interface GetRecordOptions {
  /**
   * Only these data fields, as dot paths (`"title,owner.id"` or a list, at most 32): the
   * record's shape is kept, missing fields are left out, the attributes and version stay.
   */
  readonly fields?: string | readonly string[];
}

export interface CountRecordsOptions {
  /** The filter as JSON text or an already-parsed object, as for `list`. */
  readonly filter?: string | JsonObject;
}

/** A group key's value: a JSON scalar (null for a missing field). */
export type GroupKey = string | number | boolean | null;

/** A metric as asked for and as keyed in the result: `sum:amount`, `avg:meta.score`. */
export type MetricName = `${'sum' | 'min' | 'max' | 'avg'}:${string}`;

export interface AggregateOptions {
  readonly filter?: string | JsonObject;
  /** Up to 2 data fields to group by (`"status,region"` or a list); none for one group of all. */
  readonly groupBy?: string | readonly string[];
  /** Up to 10 of `sum:f`, `min:f`, `max:f`, `avg:f` over numeric values (`"sum:amount,avg:amount"` or a list). */
  readonly metrics?: string | readonly string[];
  /** Groups returned, 1-1000 (default 1000); more set `truncated`. */
  readonly limit?: number;
}

export interface AggregateGroup {
  /** The group-by fields' values, by field name as given (without `data.`). */
  readonly key: Readonly<Record<string, GroupKey>>;
  /** Records in the group. */
  readonly count: number;
  /** Each metric asked for; null when the group holds no number in its field. */
  readonly metrics: Readonly<Partial<Record<MetricName, number | null>>>;
}

export interface AggregateResult {
  readonly groups: readonly AggregateGroup[];
  /** More groups exist than `limit` returned (groups are ordered by key). */
  readonly truncated: boolean;
}

export interface CreateRecordResult {
  readonly record: StoredRecord;
  /** True when an Idempotency-Key matched an earlier request and its result was returned. */
  readonly replayed: boolean;
}

export interface UpsertRecordResult {
  readonly record: StoredRecord;
  /** True when the record did not exist and this write created it (HTTP 201). */
  readonly created: boolean;
}
