import type { JsonObject, Precondition } from '../collections/types.js';

export type AgentStatus = 'active' | 'paused' | 'archived';
export const AGENT_STATUSES: readonly AgentStatus[] = ['active', 'paused', 'archived'];

/** What an agent holds, apart from its id, version and timestamps: what a version snapshots. */
export interface AgentFields {
  readonly name: string;
  readonly description: string | null;
  readonly industry: string | null;
  /** The model name, e.g. `gpt-4.1` or `claude-sonnet-4`. */
  readonly model: string | null;
  /** Who serves the model, e.g. `openai`, `anthropic`. */
  readonly provider: string | null;
  /** Model and provider settings (temperature, max tokens, base URL ...): any JSON object. */
  readonly modelSettings: JsonObject;
  readonly systemPrompt: string | null;
  /** Tool definitions: any JSON values, in order. */
  readonly tools: unknown[];
  /** The agent's own configuration: any JSON object. */
  readonly config: JsonObject;
  readonly status: AgentStatus;
  readonly tags: string[];
  readonly metadata: JsonObject;
}

export interface Agent extends AgentFields {
  readonly id: string;
  /** The number of its latest version (1 on create); the ETag. */
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** `create`'s input: a name, the rest optional (defaults: null, {}, [], status active). */
export type AgentInput = { readonly name: string } & Partial<Omit<AgentFields, 'name'>>;

/**
 * `patch`'s input: a JSON merge patch (RFC 7396) of the fields: objects merge, arrays and
 * other values replace, null clears a field to its default (name and status cannot be null).
 */
export type AgentPatch = { readonly [K in keyof AgentFields]?: AgentFields[K] | null };

export type AgentVersionAction = 'create' | 'update' | 'rollback';

/** One entry of an agent's history, without its snapshot (`getVersion` has it). */
export interface AgentVersionSummary {
  readonly agentId: string;
  readonly version: number;
  readonly action: AgentVersionAction;
  /** The top-level fields this version changed (all of them on create). */
  readonly changed: readonly string[];
  readonly actor: { readonly type: string; readonly id: string };
  readonly requestId: string | null;
  /** A rollback's source version. */
  readonly rolledBackFrom: number | null;
  readonly createdAt: string;
}

export interface AgentVersion extends AgentVersionSummary {
  /** The agent's fields as this version left them. */
  readonly agent: AgentFields;
}

export interface ListAgentsOptions {
  readonly status?: AgentStatus;
  readonly tag?: string;
  /** Matched against the name, case-insensitively: a prefix (default) or a substring (`match`). */
  readonly q?: string;
  readonly match?: 'prefix' | 'substring';
  readonly limit?: number;
  readonly cursor?: string;
}

export interface AgentSecretInfo {
  readonly name: string;
  /** The id of the key its value is encrypted under (rotation moves it to the current one). */
  readonly keyId: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface RevealedSecret {
  readonly name: string;
  readonly value: string;
  readonly updatedAt: string;
}

export interface RotationReport {
  readonly tenants: number;
  /** Re-encrypted under the current key by this run. */
  readonly reencrypted: number;
  /** Under the current key already (written since, or by an earlier run). */
  readonly alreadyCurrent: number;
  /** Replaced by a concurrent write while this run re-encrypted it: left as that write made it. */
  readonly changedConcurrently: number;
  /** Under a key that is not configured: left as they are, counted by key id. */
  readonly undecryptable: Readonly<Record<string, number>>;
}

export type { JsonObject, Precondition };
