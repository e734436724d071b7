import { describe, expect, it } from 'vitest';
import { isRankCollision, retryingRankCollisions } from './order.js';

// The shapes the drivers give: pg's DatabaseError fields, better-sqlite3's SqliteError.
const pgCollision = Object.assign(new Error('duplicate key value violates unique constraint "tasks_sibling_rank"'), { code: '23505', constraint: 'tasks_sibling_rank' });
const sqliteCollision = Object.assign(new Error("UNIQUE constraint failed: index 'tasks_sibling_rank'"), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
const otherUnique = Object.assign(new Error('duplicate key'), { code: '23505', constraint: 'branches_name' });

describe('rank collisions', () => {
  it('recognises a lost rank on both drivers, and nothing else', () => {
    expect(isRankCollision(pgCollision)).toBe(true);
    expect(isRankCollision(sqliteCollision)).toBe(true);
    expect(isRankCollision(otherUnique)).toBe(false);
    expect(isRankCollision(new Error('x'))).toBe(false);
  });

  it('runs the unit again after a collision, a bounded number of times', async () => {
    let calls = 0;
    expect(await retryingRankCollisions(async () => (++calls < 3 ? Promise.reject(pgCollision) : 'placed'))).toBe('placed');
    expect(calls).toBe(3);
    calls = 0;
    await expect(retryingRankCollisions(async () => { calls++; throw sqliteCollision; }, 4)).rejects.toBe(sqliteCollision);
    expect(calls).toBe(4);
    calls = 0;
    await expect(retryingRankCollisions(async () => { calls++; throw otherUnique; })).rejects.toBe(otherUnique);
    expect(calls).toBe(1);
  });
});
