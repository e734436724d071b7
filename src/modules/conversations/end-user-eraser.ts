/**
 * The conversations' and memory blocks' parts of erasing an end user (src/modules/end-users):
 * the end user's conversations with their messages, and the memory blocks scoped to the end
 * user. Each batch is one unit of work found through the `(tenant_id, end_user_id, …)` index of
 * its table (migration 0008), its deletes recorded as change-log entries without audit entries
 * (the erasure is audited once, with the counts).
 */
import { sql } from 'kysely';
import type { TenantContext } from '../../core/context.js';
import type { Database } from '../../db/database.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import type { EndUserEraser } from '../end-users/service.js';
import { deleteMessages, OFF_LOOP_MESSAGES } from './history.js';

/** Conversations looked at per batch; a batch takes them while their messages stay under OFF_LOOP_MESSAGES (at least one). */
const CONVERSATIONS_PER_BATCH = 100;
/** Memory blocks per unit of work. */
const BLOCKS_PER_BATCH = 500;

/** The unit found nothing left (a concurrent erasure or delete took it): given up, not an error. */
class NothingLeft extends Error {}

async function unlessNothingLeft(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof NothingLeft) return 0;
    throw error;
  }
}

export function createConversationsEraser(deps: { db: Database; uow: UnitOfWorkRunner }): EndUserEraser {
  const { db, uow } = deps;
  return {
    name: 'conversations',
    tables: ['conversations', 'messages'],
    async eraseBatch(ctx: TenantContext, endUserId: string) {
      const found = await uow.read(ctx, (trx) =>
        trx
          .selectFrom('conversations')
          .select(['id', 'message_count'])
          .where('tenant_id', '=', ctx.tenantId)
          .where('end_user_id', '=', endUserId)
          .orderBy('created_at')
          .orderBy('id')
          .limit(CONVERSATIONS_PER_BATCH)
          .execute(),
      );
      // Whole conversations, while their messages stay few; a long one alone, off the loop on SQLite.
      const batch: string[] = [];
      let messages = 0;
      for (const row of found) {
        if (batch.length > 0 && messages + Number(row.message_count) > OFF_LOOP_MESSAGES) break;
        batch.push(row.id);
        messages += Number(row.message_count);
      }
      if (batch.length === 0) return 0;
      return unlessNothingLeft(() =>
        uow.write(
          ctx,
          async (w) => {
            let erased = 0;
            for (const id of batch) {
              // Locked, and still the end user's: one moved to another end user meanwhile stays.
              let q = w.trx.selectFrom('conversations').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).where('end_user_id', '=', endUserId);
              if (db.dialect === 'postgres') q = q.forUpdate();
              if (!(await q.executeTakeFirst())) continue;
              await deleteMessages(w.trx, db.dialect, ctx.tenantId, id);
              await w.trx.deleteFrom('conversations').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
              await w.record({ action: 'delete', resourceType: 'conversation', resourceId: id, data: null, audit: false });
              erased++;
            }
            if (erased === 0) throw new NothingLeft();
            return erased;
          },
          { offLoop: messages > OFF_LOOP_MESSAGES },
        ),
      );
    },
  };
}

export function createMemoryBlocksEraser(deps: { uow: UnitOfWorkRunner }): EndUserEraser {
  const { uow } = deps;
  return {
    name: 'memoryBlocks',
    tables: ['memory_blocks'],
    eraseBatch: (ctx, endUserId) =>
      unlessNothingLeft(() =>
        uow.write(ctx, async (w) => {
          const { rows } = await sql<{ agent_id: string; label: string }>`delete from memory_blocks
            where tenant_id = ${ctx.tenantId} and end_user_id = ${endUserId} and (agent_id, label) in (
              select agent_id, label from memory_blocks where tenant_id = ${ctx.tenantId} and end_user_id = ${endUserId} limit ${BLOCKS_PER_BATCH})
            returning agent_id, label`.execute(w.trx);
          if (rows.length === 0) throw new NothingLeft();
          // The resource id the memory blocks module gives a block: [agent, end user, label].
          for (const row of rows) await w.record({ action: 'delete', resourceType: 'memory_block', resourceId: JSON.stringify([row.agent_id, endUserId, row.label]), data: null, audit: false });
          return rows.length;
        }),
      ),
  };
}
