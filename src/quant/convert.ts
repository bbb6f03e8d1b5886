// Whole-checkpoint conversions, independent of file I/O (the CLI writes the results):
//   quantizeCheckpoint: every decoder linear weight (q/k/v/o/gate/up/down) → bitsandbytes 4-bit
//     tensors (NF4/FP4, double-quantized absmax by default); every other tensor kept as stored.
//   dequantizeCheckpoint: every bnb-4bit linear → F32 [out, in]; every other float tensor → F32.
// Both stream tensor by tensor from a Checkpoint and report what they did.

import type { DType } from '../formats/dtypes.ts';
import type { Checkpoint } from '../model/weights.ts';
import { dequantizeLinear, findQuantizedLinears, fromBnbTensors, quantizeLinear, toBnbTensors } from './bnb-tensors.ts';
import type { QuantType } from './codes.ts';
import type { QuantDtype } from './quant-state.ts';

export interface OutTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** Decoder linear weights, by HF name. */
export const LINEAR_WEIGHT = /^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/;

export interface QuantizeStats {
  quantized: number;
  kept: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Mean over quantized tensors of ‖W − deq(q(W))‖ / ‖W‖ (Frobenius). */
  meanRelativeError: number;
}

function dtypeName(d: string): QuantDtype {
  return d === 'BF16' ? 'bfloat16' : d === 'F16' ? 'float16' : 'float32';
}

export async function quantizeCheckpoint(
  ckpt: Checkpoint,
  opts: { type: QuantType; blocksize?: number; doubleQuant?: boolean },
  onTensor?: (name: string, i: number, total: number) => void,
): Promise<{ tensors: OutTensor[]; stats: QuantizeStats }> {
  const names = ckpt.names();
  if (findQuantizedLinears(names).length) throw new Error('this checkpoint is already bitsandbytes-quantized');
  const out: OutTensor[] = [];
  let quantized = 0;
  let errSum = 0;
  let before = 0;
  let after = 0;
  for (const [i, name] of names.entries()) {
    const info = ckpt.info(name);
    before += info.end - info.begin;
    onTensor?.(name, i, names.length);
    if (LINEAR_WEIGHT.test(name) && info.shape.length === 2 && ['F32', 'F16', 'BF16'].includes(info.dtype)) {
      const w = await ckpt.readFloat32(name);
      const shape = info.shape as [number, number];
      const q = quantizeLinear(w, shape, { type: opts.type, blocksize: opts.blocksize ?? 64, doubleQuant: opts.doubleQuant ?? true, dtype: dtypeName(info.dtype) });
      const back = dequantizeLinear(q);
      let num = 0;
      let den = 0;
      for (let k = 0; k < w.length; k++) {
        num += (w[k]! - back[k]!) ** 2;
        den += w[k]! ** 2;
      }
      errSum += den > 0 ? Math.sqrt(num / den) : 0;
      quantized++;
      for (const t of toBnbTensors(name.replace(/\.weight$/, ''), q)) {
        out.push(t);
        after += t.data.byteLength;
      }
    } else {
      const data = await ckpt.readBytes(name);
      out.push({ name, dtype: info.dtype, shape: info.shape, data });
      after += data.byteLength;
    }
  }
  return {
    tensors: out,
    stats: { quantized, kept: names.length - quantized, bytesBefore: before, bytesAfter: after, meanRelativeError: quantized ? errSum / quantized : 0 },
  };
}

export async function dequantizeCheckpoint(ckpt: Checkpoint): Promise<{ tensors: OutTensor[]; dequantized: number }> {
  const names = ckpt.names();
  const prefixes = findQuantizedLinears(names);
  if (!prefixes.length) throw new Error('this checkpoint has no bitsandbytes-quantized tensors (no *.weight.quant_state.bitsandbytes__* entries)');
  const owned = new Set<string>();
  const out: OutTensor[] = [];
  for (const prefix of prefixes) {
    const parts = names.filter((n) => n === `${prefix}.weight` || n.startsWith(`${prefix}.weight.`));
    const got = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
    for (const n of parts) {
      owned.add(n);
      const info = ckpt.info(n);
      got.set(n, { dtype: info.dtype, shape: info.shape, data: await ckpt.readBytes(n) });
    }
    const q = fromBnbTensors(prefix, (n) => got.get(n));
    const w = dequantizeLinear(q);
    out.push({ name: `${prefix}.weight`, dtype: 'F32', shape: [...q.shape], data: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) });
  }
  for (const name of names) {
    if (owned.has(name)) continue;
    const info = ckpt.info(name);
    if (['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      const f = await ckpt.readFloat32(name);
      out.push({ name, dtype: 'F32', shape: info.shape, data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) });
    } else {
      out.push({ name, dtype: info.dtype, shape: info.shape, data: await ckpt.readBytes(name) });
    }
  }
  return { tensors: out, dequantized: prefixes.length };
}
