/**
 * Wakes change-feed listeners after a commit. It carries no data: listeners read the
 * `changes` table from their last sequence, so a lost or duplicated wake-up costs a
 * query, never an event. Across instances a backend (PostgreSQL NOTIFY, Redis pub/sub)
 * delivers the same wake-up to every process.
 */
export interface ChangeWakeup {
  readonly tenantId: string;
  /** Highest sequence committed by the waking transaction. */
  readonly seq: number;
}

export interface EventBus {
  readonly name: string;
  publish(wakeup: ChangeWakeup): void;
  /** Returns the function that unsubscribes. */
  subscribe(listener: (wakeup: ChangeWakeup) => void): () => void;
  close(): Promise<void>;
}
