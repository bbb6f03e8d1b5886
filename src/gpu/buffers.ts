// A small pool of storage buffers, reused by size class (powers of two), so per-step
// temporaries don't churn GPU allocations. Tracks bytes held for memory statistics.

// STORAGE | COPY_SRC | COPY_DST (values fixed by the WebGPU spec; no global needed at import time).
const USAGE = 0x80 | 0x04 | 0x08;

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private live = new Set<GPUBuffer>();
  private bytesAllocated = 0;
  private peak = 0;

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` bytes (size class rounded up to a power of two, min 256). */
  acquire(bytes: number, label = 'pooled'): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.live.add(reused);
      return reused;
    }
    const buf = this.device.createBuffer({ label, size, usage: USAGE });
    this.bytesAllocated += size;
    this.peak = Math.max(this.peak, this.bytesAllocated);
    this.live.add(buf);
    return buf;
  }

  /** Returns a buffer to the pool for reuse. */
  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) return;
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
  }

  /** Destroys every pooled buffer that is not in use. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.bytesAllocated -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }

  clear(): void {
    this.trim();
    for (const b of this.live) {
      this.bytesAllocated -= b.size;
      b.destroy();
    }
    this.live.clear();
  }

  get stats(): { allocated: number; peak: number; inUse: number } {
    let inUse = 0;
    for (const b of this.live) inUse += b.size;
    return { allocated: this.bytesAllocated, peak: this.peak, inUse };
  }
}

export function sizeClass(bytes: number): number {
  let s = 256;
  while (s < bytes) s *= 2;
  return s;
}
