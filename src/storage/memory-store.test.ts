// The in-memory ByteStore: whole values, ranged reads, chunked writes visible only on commit,
// resumed and aborted writes, listing by prefix, copy vs shared values.

import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.ts';

const bytes = (...v: number[]) => new Uint8Array(v);

describe('MemoryStore', () => {
  it('puts, gets, reads ranges, stats, lists by prefix and deletes', async () => {
    const s = new MemoryStore();
    const v = bytes(1, 2, 3, 4, 5);
    await s.put('v1/runs/a/latest', v);
    v[0] = 9; // the store kept a copy
    expect(await s.get('v1/runs/a/latest')).toEqual(bytes(1, 2, 3, 4, 5));
    expect(await s.read('v1/runs/a/latest', 1, 3)).toEqual(bytes(2, 3, 4));
    await expect(s.read('v1/runs/a/latest', 3, 3)).rejects.toThrow(/outside "v1\/runs\/a\/latest" \(5 bytes\)/);
    await expect(s.read('nope', 0, 1)).rejects.toThrow(/no value "nope"/);
    expect((await s.stat('v1/runs/a/latest'))!.size).toBe(5);
    await s.put('v1/runs/b/latest', bytes(1));
    await s.put('v1/models/x', bytes(1));
    expect((await s.list('v1/runs/')).map((e) => e.key)).toEqual(['v1/runs/a/latest', 'v1/runs/b/latest']);
    await s.delete('v1/runs/a/latest');
    expect(await s.has('v1/runs/a/latest')).toBe(false);
    expect(await s.get('v1/runs/a/latest')).toBeUndefined();
  });

  it('makes a chunked write visible only on commit; resumes and aborts unfinished writes', async () => {
    const s = new MemoryStore();
    await s.put('k', bytes(7));
    const w = await s.writer('k');
    await w.append(bytes(1, 2));
    expect(await s.get('k')).toEqual(bytes(7)); // old value until commit
    expect(await s.partialSize('k')).toBe(2);
    const again = await s.writer('k', { resume: true });
    expect(again.written).toBe(2);
    await again.append(bytes(3));
    await again.commit();
    expect(await s.get('k')).toEqual(bytes(1, 2, 3));
    expect(await s.partialSize('k')).toBe(0);
    await expect(again.append(bytes(4))).rejects.toThrow(/already finished/);
    const dropped = await s.writer('k');
    await dropped.append(bytes(9));
    await dropped.abort();
    expect(await s.get('k')).toEqual(bytes(1, 2, 3));
    expect(await s.partialSize('k')).toBe(0);
  });

  it('shares values without copying when asked to', async () => {
    const s = new MemoryStore('pages', { share: true });
    const v = bytes(1, 2);
    await s.put('p', v);
    expect(await s.get('p')).toBe(v);
    expect(s.bytes).toBe(2);
  });
});
