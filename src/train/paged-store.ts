// Paged optimizer state: an OptimizerStore (adamw.ts) whose Adam m and v live in GPU buffers only
// while a byte budget allows. One page = one LoRA (layer, module). When a page must come in and the
// budget is full, least-recently-used pages are written back to a ByteStore and their buffers freed;
// a page is paged in (uploaded) before its optimizer update. m/v round-trip as raw bytes, so training
// under any budget is bit-identical to training with everything resident.
//
// Choices:
// - LoRA params and grads stay resident (they are the model's own buffers, needed by every forward and
//   backward; paging them would mean paging per layer inside the model). Only m and v page, and only
//   m/v bytes count against the budget. Staging buffers of transfers are transient and not counted.
// - Sweep order zigzags (forward one step, backward the next): with LRU and a cyclic order every page
//   would miss every step; zigzag makes the pages used last in one step the first in the next, so a
//   budget of C pages of N misses N − C per step. Pages are independent, so order cannot change numbers.
// - Write-back never waits on the GPU one page at a time. A victim already updated in the current step
//   (its AdamW dispatch recorded but not submitted) is copied into a staging buffer inside the runtime's
//   command stream and mapped when the step's sweep ends (the last release flushes the step); a victim
//   not touched this step is copied by a separately submitted command buffer and mapped at once (the
//   runtime's stream is not flushed mid-step, so a step stays one submission). Evictions are batched
//   (room for the current page and the next pages to come, one staging buffer per batch).
// - Reads ahead: acquiring a page starts the store reads of the next pages not resident, and the end of
//   a sweep starts those of the next sweep's first pages, so they overlap the next forward/backward.
// - Buffers are reused, not remade: an evicted page's m and v buffers stay in a pool (counted against
//   the budget) and the next page of the same size is written into them with queue.writeBuffer, once
//   the write-back copy out of them is submitted (a page evicted inside the runtime's stream flushes
//   it first); staging buffers of write-backs are pooled too. A steady paged step creates no buffers
//   (each new buffer is a driver allocation; NVIDIA's Vulkan driver took ~0.25 ms for each small
//   uniform buffer, and page buffers are larger).

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ByteStore } from '../storage/store.ts';
import type { OptimizerStore, ParamPage } from './adamw.ts';

export interface PagingStats {
  /** Pages uploaded from stored bytes / written back and evicted. */
  pagesIn: number;
  pagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Time the optimizer waited inside acquire() for paging (eviction recording, reads, uploads). */
  waitMs: number;
  /** Store reads and write-back batches (GPU copy done → stored), wall time summed; they overlap compute. */
  readMs: number;
  writeMs: number;
  budget: number;
  /** Bytes of m/v buffers held on the GPU: resident pages and pooled buffers awaiting reuse. */
  residentBytes: number;
  peakResidentBytes: number;
  /** GPU buffers the store created (m/v and write-back staging); reused ones are not counted. */
  buffersMade: number;
}

export interface PagedStoreOptions {
  /** Where evicted pages go. */
  store: ByteStore;
  /** Key prefix of the pages in the store, e.g. "v1/runs/<run-id>/pages/". */
  prefix: string;
  /** Bytes of Adam m + v allowed on the GPU (default: defaultOptimizerBudget). */
  budget?: number;
  /** Pages read ahead (default 2). */
  prefetch?: number;
  /** 'zigzag' (default) or 'fixed' sweep order. */
  order?: 'zigzag' | 'fixed';
}

/** The default budget: one maximum-size buffer's worth (browsers size maxBufferSize to the GPU). */
export function defaultOptimizerBudget(rt: GpuRuntime): number {
  return Number(rt.device.limits.maxBufferSize);
}

interface Page {
  key: string;
  length: number;
  /** m and v bytes. */
  bytes: number;
  params: GPUBuffer;
  grads: GPUBuffer;
  gpu: { m: GPUBuffer; v: GPUBuffer } | null;
  lastUse: number;
  /** Sweep in which the page was last acquired (work of earlier sweeps is submitted). */
  sweep: number;
  /** Whether the store holds (or is being given) bytes for it; false: m = v = 0. */
  stored: boolean;
}

/** Write-backs recorded in the runtime's stream, mapped once the sweep's work is submitted. */
interface Deferred {
  start: () => void;
}

/** An m or v buffer of an evicted page, kept for the next page of its size. */
interface Pooled {
  buf: GPUBuffer;
  size: number;
  /** rt.submits when its write-back copy was recorded in the runtime's stream (-1: already submitted). */
  mark: number;
}

/** Least recently used pages searched for a victim of the size of a page coming in. */
const MATCH_WINDOW = 8;

/** Most idle write-back staging buffers kept (a step of a paged run has a few write-back batches in flight); together they stay within twice the budget. */
const STAGING_KEPT = 8;

export class PagedOptimizerStore implements OptimizerStore {
  readonly budget: number;
  private readonly pages = new Map<string, Page>();
  private order: string[] = [];
  private position = new Map<string, number>();
  private readonly store: ByteStore;
  private readonly prefix: string;
  private readonly depth: number;
  private readonly zigzag: boolean;
  private clock = 0;
  private sweep = 0;
  private released = 0;
  private resident = 0;
  private readonly pinned = new Set<string>();
  /** Latest written-back bytes of a page until the store holds them. */
  private readonly pending = new Map<string, Promise<Uint8Array>>();
  private readonly prefetched = new Map<string, Promise<Uint8Array | null>>();
  private readonly puts = new Map<string, Promise<void>>();
  private deferred: Deferred[] = [];
  /** Evicted pages' buffers, oldest first; their bytes stay counted in `resident`. */
  private pool: Pooled[] = [];
  private destroyed = false;
  /** Idle MAP_READ staging buffers of earlier write-backs. */
  private staging: GPUBuffer[] = [];
  private failure: Error | null = null;
  private readonly s: PagingStats;

  constructor(
    private readonly rt: GpuRuntime,
    opts: PagedStoreOptions,
  ) {
    this.store = opts.store;
    this.prefix = opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`;
    this.budget = opts.budget ?? defaultOptimizerBudget(rt);
    if (!(this.budget > 0)) throw new Error(`paged optimizer store: the GPU budget must be positive, got ${this.budget}`);
    this.depth = Math.max(0, opts.prefetch ?? 2);
    this.zigzag = (opts.order ?? 'zigzag') === 'zigzag';
    this.s = { pagesIn: 0, pagesOut: 0, bytesIn: 0, bytesOut: 0, waitMs: 0, readMs: 0, writeMs: 0, budget: this.budget, residentBytes: 0, peakResidentBytes: 0, buffersMade: 0 };
  }

  /** Adds a page over the model's params and grads buffers (not owned); m and v start at zero. */
  add(key: string, params: GPUBuffer, grads: GPUBuffer, length: number): void {
    if (this.pages.has(key)) throw new Error(`paged optimizer store: page "${key}" already exists`);
    const bytes = length * 8;
    if (bytes > this.budget) {
      throw new Error(
        `GPU budget of ${this.budget} bytes is smaller than the optimizer state of one page ("${key}": ${bytes} bytes of Adam m and v); ` +
          `the budget must hold at least the largest page`,
      );
    }
    this.pages.set(key, { key, length, bytes, params, grads, gpu: null, lastUse: 0, sweep: -1, stored: false });
    this.position.set(key, this.order.length);
    this.order.push(key);
  }

  keys(): string[] {
    this.released = 0;
    return [...this.order];
  }

  length(key: string): number {
    return this.page(key).length;
  }

  /** Total bytes of m and v. */
  stateBytes(): number {
    let n = 0;
    for (const p of this.pages.values()) n += p.bytes;
    return n;
  }

  get stats(): PagingStats {
    return { ...this.s, residentBytes: this.resident };
  }

  async acquire(key: string): Promise<ParamPage> {
    this.throwIfFailed();
    const p = this.page(key);
    this.pinned.add(key);
    if (!p.gpu) {
      const t0 = now();
      this.makeRoom(p);
      const bytes = await this.fetch(p);
      this.prefetched.delete(key);
      const n = p.length;
      const m = this.pageBuffer(n * 4, `${key}.m`, n * 4);
      const v = this.pageBuffer(n * 4, `${key}.v`, 0);
      if (bytes) {
        this.rt.device.queue.writeBuffer(m.buf, 0, bytes as Uint8Array<ArrayBuffer>, 0, n * 4);
        this.rt.device.queue.writeBuffer(v.buf, 0, bytes as Uint8Array<ArrayBuffer>, n * 4, n * 4);
        this.s.pagesIn++;
        this.s.bytesIn += p.bytes;
      } else {
        // Never stored: m = v = 0 (new buffers start zeroed).
        const zeros = new Uint8Array(n * 4);
        if (m.reused) this.rt.device.queue.writeBuffer(m.buf, 0, zeros);
        if (v.reused) this.rt.device.queue.writeBuffer(v.buf, 0, zeros);
      }
      p.gpu = { m: m.buf, v: v.buf };
      this.s.waitMs += now() - t0;
    }
    p.lastUse = ++this.clock;
    p.sweep = this.sweep;
    this.readAhead(this.position.get(key)! + 1);
    return { key, length: p.length, params: p.params, grads: p.grads, m: p.gpu.m, v: p.gpu.v };
  }

  release(key: string): void {
    this.page(key);
    this.pinned.delete(key);
    if (++this.released < this.order.length) return;
    // The sweep is over: every update is recorded, so the step can be submitted and the write-backs
    // recorded in it mapped; then the next sweep's first reads start.
    this.released = 0;
    this.sweep++;
    this.rt.flush();
    for (const d of this.deferred.splice(0)) d.start();
    if (this.zigzag) {
      this.order.reverse();
      this.order.forEach((k, i) => this.position.set(k, i));
    }
    this.readAhead(0);
  }

  /** m and v of a page, wherever they are (for checkpoints). Call between steps. */
  async readState(key: string): Promise<{ m: Float32Array; v: Float32Array }> {
    const p = this.page(key);
    const n = p.length;
    if (p.gpu) {
      const [m, v] = await Promise.all([this.rt.readF32(p.gpu.m, n), this.rt.readF32(p.gpu.v, n)]);
      return { m, v };
    }
    const bytes = await this.fetch(p);
    if (!bytes) return { m: new Float32Array(n), v: new Float32Array(n) };
    const all = new Float32Array(bytes.slice(0, p.bytes).buffer);
    return { m: all.slice(0, n), v: all.slice(n) };
  }

  /** Replaces m and v of a page (resume). Call between steps. */
  async writeState(key: string, m: Float32Array, v: Float32Array): Promise<void> {
    const p = this.page(key);
    if (m.length !== p.length || v.length !== p.length) throw new Error(`paged optimizer store: page "${key}" has ${p.length} elements, got m ${m.length} and v ${v.length}`);
    if (p.gpu) {
      this.rt.write(p.gpu.m, m);
      this.rt.write(p.gpu.v, v);
      this.rt.flush();
      return;
    }
    const bytes = new Uint8Array(p.bytes);
    bytes.set(new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
    bytes.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), m.byteLength);
    this.prefetched.delete(key);
    this.writeBack(p, Promise.resolve(bytes));
  }

  /** Waits until every write-back is in the store; throws the first failure. */
  async drain(): Promise<void> {
    this.startDeferred();
    await Promise.all([...this.puts.values()]);
    this.throwIfFailed();
  }

  /** Frees the GPU buffers of resident pages and pooled ones (after the last step's work has completed). */
  destroy(): void {
    this.startDeferred();
    this.destroyed = true;
    for (const p of this.pages.values()) {
      p.gpu?.m.destroy();
      p.gpu?.v.destroy();
      p.gpu = null;
    }
    for (const e of this.pool.splice(0)) e.buf.destroy();
    for (const b of this.staging.splice(0)) b.destroy();
    this.resident = 0;
  }

  /** destroy(), then removes the pages from the store. */
  async clear(): Promise<void> {
    this.destroy();
    await Promise.all([...this.puts.values()]).catch(() => undefined);
    for (const p of this.pages.values()) if (p.stored) await this.store.delete(this.storeKey(p.key));
  }

  // ---- internals ---------------------------------------------------------------------------

  private get pooledBytes(): number {
    return this.pool.reduce((n, e) => n + e.size, 0);
  }

  /** Whether a pooled buffer's write-back copy is still recorded in the runtime's unsubmitted stream. */
  private unsubmitted(e: Pooled): boolean {
    return e.mark >= this.rt.submits;
  }

  private page(key: string): Page {
    const p = this.pages.get(key);
    if (!p) throw new Error(`paged optimizer store: no page "${key}" (have ${this.pages.size})`);
    return p;
  }

  private storeKey(key: string): string {
    return `${this.prefix}${key}`;
  }

  private throwIfFailed(): void {
    if (this.failure) throw new Error(`optimizer paging to ${this.store.name} failed: ${this.failure.message}`);
  }

  /** Non-resident pages from `from` on in sweep order, at most `count` (wrapping no further than the end). */
  private upcoming(from: number, count: number): Page[] {
    const out: Page[] = [];
    for (let i = from; i < this.order.length && out.length < count; i++) {
      const q = this.pages.get(this.order[i]!)!;
      if (!q.gpu) out.push(q);
    }
    return out;
  }

  private readAhead(from: number): void {
    for (const q of this.upcoming(from, this.depth)) {
      if (!q.stored || this.pending.has(q.key) || this.prefetched.has(q.key)) continue;
      const pr = this.load(q);
      pr.catch(() => undefined);
      this.prefetched.set(q.key, pr);
    }
  }

  /** Evicts LRU pages so that `p` fits, and if possible the pages read ahead after it. */
  private makeRoom(p: Page): void {
    const free = () => this.budget - this.resident + this.pooledBytes;
    if (p.bytes <= free()) return;
    const next = this.position.get(p.key)! + 1;
    const incoming = [p];
    let want = p.bytes;
    for (const q of this.upcoming(next, this.depth)) {
      if (want + q.bytes <= this.budget) {
        incoming.push(q);
        want += q.bytes;
      }
    }
    // Resident pages coming up soon are kept while others can go.
    const soon = new Set<string>();
    for (let i = next; i < Math.min(this.order.length, next + this.depth + 1); i++) soon.add(this.order[i]!);
    const candidates = [...this.pages.values()]
      .filter((q) => q.gpu && q !== p && !this.pinned.has(q.key))
      .sort((a, b) => Number(soon.has(a.key)) - Number(soon.has(b.key)) || a.lastUse - b.lastUse);
    const victims: Page[] = [];
    let room = free();
    // A page coming in takes pooled buffers of its size, or those of a victim of its size from among
    // the least recently used few, so buffers are reused as they are, not freed and made again.
    const pooled = new Map<number, number>();
    for (const e of this.pool) pooled.set(e.size, (pooled.get(e.size) ?? 0) + 1);
    const window = candidates.filter((q) => !soon.has(q.key)).slice(0, MATCH_WINDOW);
    for (const q of incoming) {
      if (room >= want) break;
      const have = pooled.get(q.length * 4) ?? 0;
      if (have >= 2) {
        pooled.set(q.length * 4, have - 2);
        continue;
      }
      const match = window.find((c) => held(c) === q.bytes && !victims.includes(c));
      if (match) {
        victims.push(match);
        room += held(match);
      }
    }
    for (const q of candidates) {
      if (victims.includes(q)) continue;
      if (room >= want || (room >= p.bytes && soon.has(q.key))) break;
      victims.push(q);
      room += held(q);
    }
    if (room < p.bytes) throw new Error(`paged optimizer store: no room for page "${p.key}" (${p.bytes} bytes) within ${this.budget} bytes`);
    // Pages updated in this sweep are referenced by unsubmitted work: copy them in the runtime's stream.
    const inStream = victims.filter((q) => q.sweep === this.sweep);
    const idle = victims.filter((q) => q.sweep !== this.sweep);
    if (inStream.length) this.evict(inStream, true);
    if (idle.length) this.evict(idle, false);
  }

  /**
   * An m or v buffer of `size` bytes for a page coming in (`later` bytes more to follow for it): a
   * pooled one of that size, else the smallest larger one the budget leaves room for (after
   * submitting the runtime's stream if its write-back copy is still recorded there), else a new one,
   * for which pooled buffers are freed while the budget needs it (makeRoom made sure it can).
   */
  private pageBuffer(size: number, label: string, later: number): { buf: GPUBuffer; reused: boolean } {
    // The pooled buffer of that size, else the smallest larger one within what may go to this one
    // (it stays counted at its size).
    const spare = this.budget - this.resident + this.pooledBytes - later;
    const i = smallestFit(this.pool, size, (e) => e.size === size || e.size <= spare);
    if (i >= 0) {
      const [e] = this.pool.splice(i, 1);
      if (this.unsubmitted(e!)) this.startDeferred();
      return { buf: e!.buf, reused: true };
    }
    while (this.budget - this.resident < size && this.pool.length) this.dropPooled(this.pool.shift()!);
    if (this.budget - this.resident < size) throw new Error(`paged optimizer store: no room for ${label} (${size} bytes) within ${this.budget} bytes`);
    this.resident += size;
    this.s.peakResidentBytes = Math.max(this.s.peakResidentBytes, this.resident);
    this.s.buffersMade++;
    return { buf: this.rt.create(size, label), reused: false };
  }

  private dropPooled(e: Pooled): void {
    this.resident -= e.size;
    if (this.unsubmitted(e)) this.rt.retire(e.buf); // destroyed once the stream holding its copy ran
    else e.buf.destroy(); // its copy is submitted: WebGPU frees it after that work
  }

  /** An idle MAP_READ staging buffer of at least `size` bytes, or a new one. */
  private stagingBuffer(size: number): GPUBuffer {
    const i = smallestFit(this.staging, size);
    if (i >= 0) return this.staging.splice(i, 1)[0]!;
    this.s.buffersMade++;
    return this.rt.device.createBuffer({ label: 'paging.writeback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Keeps an unmapped staging buffer for the next write-back (the largest few). */
  private keepStaging(b: GPUBuffer): void {
    if (this.destroyed) return b.destroy();
    this.staging.push(b);
    this.staging.sort((a, c) => c.size - a.size);
    let bytes = 0;
    const keep = this.staging.filter((x, i) => i < STAGING_KEPT && (bytes += x.size) <= 2 * this.budget);
    for (const x of this.staging) if (!keep.includes(x)) x.destroy();
    this.staging = keep;
  }

  /** Copies the victims' m/v into one staging buffer, pools their GPU buffers, and stores the bytes. */
  private evict(victims: Page[], inStream: boolean): void {
    const total = victims.reduce((n, q) => n + q.bytes, 0);
    const staging = this.stagingBuffer(total);
    const enc = inStream ? null : this.rt.device.createCommandEncoder({ label: 'paging.writeback' });
    const offsets: number[] = [];
    const freed: GPUBuffer[] = [];
    let off = 0;
    for (const q of victims) {
      const { m, v } = q.gpu!;
      const half = q.length * 4;
      if (enc) {
        enc.copyBufferToBuffer(m, 0, staging, off, half);
        enc.copyBufferToBuffer(v, 0, staging, off + half, half);
      } else {
        this.rt.copy(m, 0, staging, off, half);
        this.rt.copy(v, 0, staging, off + half, half);
      }
      freed.push(m, v);
      q.gpu = null;
      offsets.push(off);
      off += q.bytes;
    }
    let start!: () => void;
    const go = new Promise<void>((resolve) => (start = resolve));
    let begun = 0;
    const mapped = go.then(async () => {
      begun = now();
      await staging.mapAsync(GPUMapMode.READ, 0, total);
      const all = new Uint8Array(staging.getMappedRange(0, total).slice(0));
      staging.unmap();
      return all;
    });
    mapped.then(
      () => this.keepStaging(staging),
      () => staging.destroy(),
    );
    if (enc) this.rt.device.queue.submit([enc.finish()]);
    // The victims' buffers wait in the pool for the next pages; the ones whose copy is recorded in
    // the runtime's stream are written again only after that stream is submitted (pageBuffer).
    const mark = enc ? -1 : this.rt.submits;
    for (const buf of freed) this.pool.push({ buf, size: buf.size, mark });
    if (enc) start();
    else this.deferred.push({ start });
    const stored = victims.map((q, i) => this.writeBack(q, mapped.then((all) => all.subarray(offsets[i]!, offsets[i]! + q.bytes))));
    void Promise.all(stored).then(() => (this.s.writeMs += now() - begun));
    this.s.pagesOut += victims.length;
    this.s.bytesOut += total;
  }

  /** Records `bytes` as the page's latest state and stores it (puts of one key stay in order). */
  private writeBack(p: Page, bytes: Promise<Uint8Array>): Promise<void> {
    p.stored = true;
    this.pending.set(p.key, bytes);
    const prev = this.puts.get(p.key) ?? Promise.resolve();
    const done = prev
      .then(() => bytes)
      .then((b) => this.store.put(this.storeKey(p.key), b))
      .then(() => {
        if (this.pending.get(p.key) === bytes) this.pending.delete(p.key);
        if (this.puts.get(p.key) === done) this.puts.delete(p.key);
      })
      .catch((e: unknown) => {
        this.failure ??= e instanceof Error ? e : new Error(String(e));
      });
    this.puts.set(p.key, done);
    return done;
  }

  /** Submits the runtime's stream and maps the write-backs recorded in it. */
  private startDeferred(): void {
    if (!this.deferred.length) return;
    this.rt.flush();
    for (const d of this.deferred.splice(0)) d.start();
  }

  /** The latest bytes of a non-resident page: a write-back in flight, a read ahead, or the store. */
  private fetch(p: Page): Promise<Uint8Array | null> {
    const pending = this.pending.get(p.key);
    if (pending) {
      if (this.deferred.length) this.startDeferred();
      return pending;
    }
    return this.prefetched.get(p.key) ?? this.load(p);
  }

  private async load(p: Page): Promise<Uint8Array | null> {
    if (!p.stored) return null;
    const t0 = now();
    const b = await this.store.get(this.storeKey(p.key));
    if (!b || b.byteLength !== p.bytes) {
      throw new Error(`${this.store.name}: optimizer page "${this.storeKey(p.key)}" is ${b ? `${b.byteLength} bytes, expected ${p.bytes}` : 'missing'}`);
    }
    this.s.readMs += now() - t0;
    return b;
  }
}

/** Index of the smallest item of at least `size` bytes that `ok` allows (the first of equals), or -1. */
function smallestFit<T extends { size: number }>(items: T[], size: number, ok: (x: T) => boolean = () => true): number {
  let best = -1;
  items.forEach((x, i) => {
    if (x.size >= size && ok(x) && (best < 0 || x.size < items[best]!.size)) best = i;
  });
  return best;
}

/** Bytes of a resident page's m and v buffers (a page may sit in larger pooled buffers than it needs). */
function held(p: Page): number {
  return p.gpu ? p.gpu.m.size + p.gpu.v.size : 0;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
