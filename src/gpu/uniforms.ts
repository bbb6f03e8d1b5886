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
  private epoch = 0;
  /** Buffers made (`created`) and recycled blocks rewritten (`rewritten`), for tests and profiling. */
  readonly stats = { created: 0, rewritten: 0 };

  constructor(private readonly device: GPUDevice) {}

  /** The uniform buffer holding `data` (bytes, a multiple of 4). Never written while in use. */
  get(data: ArrayBuffer): GPUBuffer {
    const key = String.fromCharCode(...new Uint16Array(data));
    const hit = this.blocks.get(key);
    if (hit) {
      hit.epoch = this.epoch;
      return hit.buf;
    }
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    let buf = this.spare.get(size)?.pop();
    if (buf) {
      this.device.queue.writeBuffer(buf, 0, data);
      this.stats.rewritten++;
    } else {
      buf = this.device.createBuffer({
        label: 'params',
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data));
      buf.unmap();
      this.stats.created++;
    }
    this.blocks.set(key, { buf, epoch: this.epoch });
    return buf;
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
    for (const b of this.blocks.values()) b.buf.destroy();
    for (const list of this.spare.values()) list.forEach((b) => b.destroy());
    this.blocks.clear();
    this.spare.clear();
  }
}

/**
 * Submits a block may go unused before its buffer is recycled. A training step submits 2–3 times
 * on a CPU adapter (loss and gradient-norm reads) and once per 96 dispatches more on a GPU (see
 * GpuRuntime.submitEvery): 5–10 times for the bench's models, so a block used once a step stays.
 */
export const RECYCLE_AFTER = 24;
