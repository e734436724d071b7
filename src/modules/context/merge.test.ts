import { describe, expect, it } from 'vitest';
import { deepMerge, resolveLevels } from './merge.js';

describe('context merge', () => {
  it('nearest wins, nested objects merge, arrays and null replace', () => {
    const { context, sources } = resolveLevels([
      { level: 'global', data: { model: 'a', tools: ['x', 'y'], limits: { tokens: 100, calls: 5 }, tone: 'dry' } },
      { level: 'project', data: { limits: { calls: 9 }, repo: 'r' } },
      { level: 'branch', data: null },
      { level: 'task', data: { tools: ['z'], tone: null, limits: { deep: { a: 1 } } } },
    ]);
    expect(context).toEqual({ model: 'a', tools: ['z'], limits: { tokens: 100, calls: 9, deep: { a: 1 } }, tone: null, repo: 'r' });
    expect(sources).toEqual({ model: 'global', tools: 'task', limits: 'task', tone: 'task', repo: 'project' });
  });

  it('keeps __proto__ a plain key and never touches Object.prototype', () => {
    const near = JSON.parse('{"__proto__":{"polluted":true},"a":{"__proto__":{"x":1}}}') as Record<string, unknown>;
    const merged = deepMerge(JSON.parse('{"a":{"b":1}}'), near) as Record<string, unknown>;
    expect(Object.keys(merged).sort()).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(merged.a as object).sort()).toEqual(['__proto__', 'b']);
  });
});
