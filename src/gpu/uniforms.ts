// The runtime's kernel parameter blocks: small uniform buffers, content-addressed so a training
// step that issues the same blocks every step makes each once (creating hundreds of small buffers
// per step dominated a step's CPU time on an H100: 0.25 ms each in the driver). Blocks whose words
// change every step (dropout keys, AdamW's step count, a decode position) would still make new
// buffers forever, so a block unused for RECYCLE_AFTER submits gives its buffer back, and a new
// block of that size takes it with one queue.writeBuffer instead of a new buffer.
//
// Why a recycled buffer is safe to rewrite: every command that read its old words was recorded
// before one of the last RECYCLE_AFTER submits, so it is already on the queue, and queue
// operations run in order: writeBuffer lands after those commands and before any later submit.

export class UniformCache {
  private readonly blocks = new Map<string, { buf: GPUBuffer; epoch: number }>();
  private readonly spare = new Map<number, GPUBuffer[]>();
  private readonly slots = new Map<string, { buf: GPUBuffer; key: string; epoch: number }>();
  private epoch = 0;
  /** Buffers made (`created`) and recycled blocks or slots rewritten (`rewritten`), for tests and profiling. */
  readonly stats = { created: 0, rewritten: 0 };

  constructor(
    private readonly device: GPUDevice,
    /** Destroys a buffer once the work recorded so far is done (GpuRuntime.retire). */
    private readonly retire: (buf: GPUBuffer) => void,
  ) {}

  /**
   * The buffer of a named call site whose words change from step to step (a dropout key, AdamW's
   * step): one buffer per slot, rewritten in place when the words change, so the site keeps its
   * bind groups. Unless the commands not yet submitted read the slot's current words: then the
   * block comes from `get`. Names only steer reuse; two sites sharing one stay correct.
   */
  slot(name: string, data: ArrayBuffer): GPUBuffer {
    const key = keyOf(data);
    const s = this.slots.get(name);
    if (s && s.key === key) {
      s.epoch = this.epoch;
      return s.buf;
    }
    if (s && s.epoch === this.epoch) return this.block(key, data);
    const size = blockSize(data);
    if (s && s.buf.size === size) {
      this.device.queue.writeBuffer(s.buf, 0, data);
      this.stats.rewritten++;
      s.key = key;
      s.epoch = this.epoch;
      return s.buf;
    }
    if (s) this.retire(s.buf);
    const buf = this.create(data, size);
    this.slots.set(name, { buf, key, epoch: this.epoch });
    return buf;
  }

  /** The uniform buffer holding `data` (bytes, a multiple of 4). Never written while in use. */
  get(data: ArrayBuffer): GPUBuffer {
    return this.block(keyOf(data), data);
  }

  private block(key: string, data: ArrayBuffer): GPUBuffer {
    const hit = this.blocks.get(key);
    if (hit) {
      hit.epoch = this.epoch;
      return hit.buf;
    }
    const size = blockSize(data);
    // Oldest first: blocks are recycled in the order they were made, so the block a call site makes
    // each step takes the buffer that site had a few steps before, and its bind groups are cached.
    let buf = this.spare.get(size)?.shift();
    if (buf) {
      this.device.queue.writeBuffer(buf, 0, data);
      this.stats.rewritten++;
    } else {
      buf = this.create(data, size);
    }
    this.blocks.set(key, { buf, epoch: this.epoch });
    return buf;
  }

  private create(data: ArrayBuffer, size: number): GPUBuffer {
    this.stats.created++;
    return uniformBuffer(this.device, data, 'params', size);
  }

  /** Call after each submit: blocks unused for RECYCLE_AFTER submits give their buffers back. */
  submitted(): void {
    this.epoch++;
    const stale = this.epoch - RECYCLE_AFTER;
    for (const [key, b] of this.blocks) {
      if (b.epoch > stale) continue;
      this.blocks.delete(key);
      const list = this.spare.get(b.buf.size) ?? [];
      list.push(b.buf);
      this.spare.set(b.buf.size, list);
    }
  }

  destroy(): void {
    for (const b of this.slots.values()) b.buf.destroy();
    this.slots.clear();
    for (const b of this.blocks.values()) b.buf.destroy();
    for (const list of this.spare.values()) list.forEach((b) => b.destroy());
    this.blocks.clear();
    this.spare.clear();
  }
}

/**
 * A new uniform buffer holding `data` (its size rounded up to 16 bytes, at least 16), writable by
 * queue.writeBuffer and readable by copies (tests read parameter blocks back).
 */
export function uniformBuffer(device: GPUDevice, data: ArrayBuffer, label: string, size = blockSize(data)): GPUBuffer {
  const buf = device.createBuffer({
    label,
    size,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
  });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data));
  buf.unmap();
  return buf;
}

/** A block's words as a string (the cache key). */
function keyOf(data: ArrayBuffer): string {
  return String.fromCharCode(...new Uint16Array(data));
}

function blockSize(data: ArrayBuffer): number {
  return Math.max(16, Math.ceil(data.byteLength / 16) * 16);
}

/**
 * Submits a block may go unused before its buffer is recycled. A training step submits 2–3 times
 * on a CPU adapter (loss and gradient-norm reads) and once per 96 dispatches more on a GPU (see
 * GpuRuntime.submitEvery): 5–10 times for the bench's models, so a block used once a step stays.
 */
export const RECYCLE_AFTER = 24;
