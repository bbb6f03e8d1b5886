// Checkpoints of a fine-tuning run in a ByteStore, written atomically, and exact resume.
// Layout under v1/runs/<run-id>/ (STORE_VERSION 1):
//   checkpoints/<name>/tensors.bin  per page (one LoRA (layer, module)): params [A|B], Adam m, v as f32
//   checkpoints/<name>/state.json   RunState + a manifest (offset, length, CRC-32 of every page)
//   latest                          {"checkpoint": <name>, "step": N}: the last complete checkpoint
//   pages/<page-key>                live optimizer pages of a paged run (src/train/paged-store.ts)
// A checkpoint is written under a fresh name (tensors, then state), and only then does `latest` switch
// to it, so a crash mid-write never replaces the last good one; older ones are pruned (the newest
// `keep` stay, so a damaged latest still has a predecessor). Loading verifies sizes and checksums and
// falls back, with a message, to the newest older checkpoint that is intact.
// What makes resume exact: the AdamW step count (= LR-schedule position), params and m/v bit for bit,
// the data cursor (the order is a pure function of seed and epoch, so epoch + micro-batch index),
// and the seeds (dropout masks are keyed by seed and micro-step, itself a function of the step).

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ByteStore } from '../storage/store.ts';
import { runPrefix as layoutRunPrefix } from '../storage/layout.ts';
import type { OptimizerStore } from '../train/adamw.ts';
import type { TrainConfig } from '../train/train-config.ts';
import type { LoraAdapter, LoraSettings } from './lora.ts';
import type { StepEvent } from './finetune.ts';

export const CHECKPOINT_VERSION = 1;

/** How the run was set up; a resumed run must match it. */
export interface RunConfig {
  modelId: string;
  lora: LoraSettings;
  train: TrainConfig;
  /** Data source, pipeline and other options as the caller describes them (compared on resume). */
  options: Record<string, unknown>;
}

export interface RunState {
  version: number;
  runId: string;
  config: RunConfig;
  /** Optimizer steps done: AdamW's step count and the LR schedule's position. */
  step: number;
  totalSteps: number;
  warmupSteps: number;
  /** Micro-batches run so far (dropout masks are keyed by the micro-step). */
  microSteps: number;
  /** The next micro-batch: index `batch` of epoch `epoch`'s shuffled order. */
  cursor: { epoch: number; batch: number };
  seeds: { lora: number; data: number };
  /** Fingerprint of the prepared data, checked on resume. */
  data: { trainExamples: number; evalExamples: number; tokens: number };
  history: StepEvent[];
  initialEvalLoss: number | null;
  evalLoss: number | null;
  finished: boolean;
  /** ms since epoch when written. */
  written: number;
}

interface PageEntry {
  key: string;
  length: number;
  offset: number;
  crc: number;
}

interface StateFile {
  state: RunState;
  tensors: { bytes: number; pages: PageEntry[] };
}

export interface CheckpointInfo {
  runId: string;
  name: string;
  step: number;
  bytes: number;
  ms: number;
}

export interface LoadedCheckpoint {
  name: string;
  state: RunState;
  /** Per page: params, m, v. */
  pages: Map<string, { params: Float32Array; m: Float32Array; v: Float32Array }>;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export function runPrefix(runId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(runId)) {
    throw new CheckpointError(`invalid run id "${runId}": use letters, digits, ".", "_" and "-" (at most 100, not starting with a symbol)`);
  }
  return layoutRunPrefix(runId);
}

/** A new run id: date and time plus a random suffix, e.g. "20260123-141502-k3f9". */
export function newRunId(date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  return `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Page key of a LoRA module, the same as the trainer's optimizer pages. */
export function pageKey(layer: number, target: string): string {
  return `${layer}.${target}`;
}

// ---- optimizer state access ------------------------------------------------------------------

interface StateAccess {
  readState(key: string): Promise<{ m: Float32Array; v: Float32Array }>;
  writeState(key: string, m: Float32Array, v: Float32Array): Promise<void>;
}

/** m/v access for any OptimizerStore: its own readState/writeState (paged store) or acquire + GPU read/write. */
function stateAccess(rt: GpuRuntime, store: OptimizerStore): StateAccess {
  const own = store as Partial<StateAccess>;
  if (typeof own.readState === 'function' && typeof own.writeState === 'function') return own as StateAccess;
  return {
    async readState(key) {
      const page = await store.acquire(key);
      try {
        const [m, v] = await Promise.all([rt.readF32(page.m, page.length), rt.readF32(page.v, page.length)]);
        return { m, v };
      } finally {
        store.release(key);
      }
    },
    async writeState(key, m, v) {
      const page = await store.acquire(key);
      rt.write(page.m, m);
      rt.write(page.v, v);
      store.release(key);
    },
  };
}

// ---- writing ---------------------------------------------------------------------------------

/**
 * Writes a checkpoint of `state` with the adapter's params and the optimizer's m/v, switches
 * `latest` to it, and prunes older ones (keeping `keep`, default 2). Call between steps.
 */
export async function saveCheckpoint(
  rt: GpuRuntime,
  store: ByteStore,
  state: RunState,
  lora: LoraAdapter,
  optimizer: OptimizerStore,
  opts: { keep?: number } = {},
): Promise<CheckpointInfo> {
  const t0 = now();
  const prefix = runPrefix(state.runId);
  const name = `step-${String(state.step).padStart(7, '0')}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  const dir = `${prefix}checkpoints/${name}/`;
  const access = stateAccess(rt, optimizer);
  const writer = await store.writer(`${dir}tensors.bin`);
  const pages: PageEntry[] = [];
  let offset = 0;
  try {
    for (const m of lora.modules.values()) {
      const key = pageKey(m.layer, m.target);
      const params = await rt.readF32(m.params, m.size);
      const { m: mm, v } = await access.readState(key);
      const bytes = new Uint8Array(m.size * 12);
      bytes.set(asBytes(params), 0);
      bytes.set(asBytes(mm), m.size * 4);
      bytes.set(asBytes(v), m.size * 8);
      await writer.append(bytes);
      pages.push({ key, length: m.size, offset, crc: crc32(bytes) });
      offset += bytes.byteLength;
    }
    await writer.commit();
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
  const file: StateFile = { state: { ...state, version: CHECKPOINT_VERSION, written: Date.now() }, tensors: { bytes: offset, pages } };
  await store.put(`${dir}state.json`, utf8(JSON.stringify(file)));
  await store.put(`${prefix}latest`, utf8(JSON.stringify({ version: CHECKPOINT_VERSION, checkpoint: name, step: state.step })));
  await prune(store, prefix, name, opts.keep ?? 2);
  return { runId: state.runId, name, step: state.step, bytes: offset, ms: now() - t0 };
}

/** Checkpoint names of a run with their step (from the name), newest first. */
async function listCheckpoints(store: ByteStore, prefix: string): Promise<Array<{ name: string; step: number }>> {
  const names = new Set<string>();
  for (const e of await store.list(`${prefix}checkpoints/`)) {
    const name = e.key.slice(`${prefix}checkpoints/`.length).split('/')[0];
    if (name) names.add(name);
  }
  return [...names]
    .map((name) => ({ name, step: Number(/^step-(\d+)-/.exec(name)?.[1] ?? -1) }))
    .sort((a, b) => b.step - a.step || (a.name < b.name ? 1 : -1));
}

async function prune(store: ByteStore, prefix: string, current: string, keep: number): Promise<void> {
  const all = await listCheckpoints(store, prefix);
  const cur = all.find((c) => c.name === current)!;
  // Keep the current one and the newest older ones; torn ones (same step or newer) go.
  const older = all.filter((c) => c.step < cur.step);
  const kept = new Set([current, ...older.slice(0, Math.max(0, keep - 1)).map((c) => c.name)]);
  for (const c of all) {
    if (kept.has(c.name)) continue;
    for (const e of await store.list(`${prefix}checkpoints/${c.name}/`)) await store.delete(e.key);
  }
}

// ---- reading ---------------------------------------------------------------------------------

/**
 * The newest intact checkpoint of a run, or null when the run has none. `onMessage` hears about
 * every checkpoint skipped and why (damaged, or torn: written but never made current).
 */
export async function loadCheckpoint(
  store: ByteStore,
  runId: string,
  onMessage: (msg: string) => void = () => undefined,
  opts: { tensors?: boolean } = {},
): Promise<LoadedCheckpoint | null> {
  const prefix = runPrefix(runId);
  const all = await listCheckpoints(store, prefix);
  let pointer: { checkpoint: string; step: number } | null = null;
  const raw = await store.get(`${prefix}latest`);
  if (raw) {
    try {
      pointer = JSON.parse(text(raw));
      if (typeof pointer?.checkpoint !== 'string') throw new Error('no checkpoint name');
    } catch (e) {
      onMessage(`run ${runId}: the "latest" record is unreadable (${(e as Error).message}); looking for the newest intact checkpoint`);
      pointer = null;
    }
  }
  if (!all.length) {
    if (pointer) onMessage(`run ${runId}: "latest" names checkpoint ${pointer.checkpoint}, which is missing`);
    return null;
  }
  let candidates = all;
  if (pointer) {
    const at = all.find((c) => c.name === pointer!.checkpoint);
    for (const c of all) {
      if (c.name !== pointer.checkpoint && c.step > (at?.step ?? pointer.step)) {
        onMessage(`run ${runId}: ignoring checkpoint ${c.name} (step ${c.step}): it was never completed (the run stopped while writing it)`);
      }
    }
    const rest = all.filter((c) => c.name !== pointer!.checkpoint && c.step <= (at?.step ?? pointer!.step));
    if (at) candidates = [at, ...rest];
    else {
      onMessage(`run ${runId}: "latest" names checkpoint ${pointer.checkpoint}, which is missing`);
      candidates = rest;
    }
  }
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    try {
      const loaded = await readCheckpoint(store, prefix, c.name, opts.tensors ?? true);
      if (loaded.state.runId !== runId) throw new Error(`it belongs to run ${loaded.state.runId}`);
      return loaded;
    } catch (e) {
      const next = candidates[i + 1];
      onMessage(
        `run ${runId}: checkpoint ${c.name} (step ${c.step}) is damaged: ${(e as Error).message}; ` +
          (next ? `falling back to ${next.name} (step ${next.step})` : 'no older checkpoint to fall back to'),
      );
    }
  }
  throw new CheckpointError(`run ${runId}: no intact checkpoint in ${store.name}`);
}

async function readCheckpoint(store: ByteStore, prefix: string, name: string, tensors: boolean): Promise<LoadedCheckpoint> {
  const dir = `${prefix}checkpoints/${name}/`;
  const raw = await store.get(`${dir}state.json`);
  if (!raw) throw new Error('state.json is missing');
  let file: StateFile;
  try {
    file = JSON.parse(text(raw)) as StateFile;
  } catch (e) {
    throw new Error(`state.json is not valid JSON (${(e as Error).message})`);
  }
  if (file?.state?.version !== CHECKPOINT_VERSION) throw new Error(`unsupported checkpoint version ${String(file?.state?.version)}`);
  const st = await store.stat(`${dir}tensors.bin`);
  if (!st) throw new Error('tensors.bin is missing');
  if (st.size !== file.tensors.bytes) throw new Error(`tensors.bin has ${st.size} bytes, expected ${file.tensors.bytes}`);
  const pages = new Map<string, { params: Float32Array; m: Float32Array; v: Float32Array }>();
  for (const p of tensors ? file.tensors.pages : []) {
    const bytes = await store.read(`${dir}tensors.bin`, p.offset, p.length * 12);
    if (crc32(bytes) !== p.crc) throw new Error(`page ${p.key} fails its checksum`);
    const all = new Float32Array(bytes.slice().buffer);
    pages.set(p.key, { params: all.slice(0, p.length), m: all.slice(p.length, 2 * p.length), v: all.slice(2 * p.length) });
  }
  return { name, state: file.state, pages };
}

/**
 * The state of a run's newest checkpoint whose state.json is intact (tensors are not read), to
 * rebuild the run's setup before resuming; null when the run has no checkpoint.
 */
export async function readRunState(store: ByteStore, runId: string, onMessage?: (msg: string) => void): Promise<RunState | null> {
  return (await loadCheckpoint(store, runId, onMessage, { tensors: false }))?.state ?? null;
}

/**
 * Restores a run into a freshly built adapter and optimizer: LoRA params, Adam m/v and the step
 * count. Returns the run state (cursor, history, ...) of the checkpoint used, or null if none.
 */
export async function resumeRun(
  rt: GpuRuntime,
  store: ByteStore,
  runId: string,
  target: { lora: LoraAdapter; optimizer: OptimizerStore; setStep: (step: number) => void },
  onMessage?: (msg: string) => void,
): Promise<{ state: RunState; name: string } | null> {
  const ck = await loadCheckpoint(store, runId, onMessage);
  if (!ck) return null;
  const access = stateAccess(rt, target.optimizer);
  const want = [...target.lora.modules.values()];
  if (want.length !== ck.pages.size) throw new CheckpointError(`run ${runId}: checkpoint ${ck.name} has ${ck.pages.size} LoRA modules, the adapter ${want.length}`);
  for (const m of want) {
    const key = pageKey(m.layer, m.target);
    const p = ck.pages.get(key);
    if (!p || p.params.length !== m.size) throw new CheckpointError(`run ${runId}: checkpoint ${ck.name} has no page ${key} of ${m.size} floats`);
    rt.write(m.params, p.params);
    await access.writeState(key, p.m, p.v);
  }
  await rt.sync();
  target.setStep(ck.state.step);
  return { state: ck.state, name: ck.name };
}

/** Differences between the configuration a run was started with and the one given now. */
export function configDifferences(saved: unknown, now: unknown, path = ''): string[] {
  if (typeof saved !== 'object' || typeof now !== 'object' || saved === null || now === null) {
    return JSON.stringify(saved) === JSON.stringify(now) ? [] : [`${path || 'value'}: ${JSON.stringify(saved)} then, ${JSON.stringify(now)} now`];
  }
  if (Array.isArray(saved) || Array.isArray(now)) return configDifferences(JSON.stringify(saved), JSON.stringify(now), path);
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  const out: string[] = [];
  for (const k of [...keys].sort()) {
    out.push(...configDifferences((saved as Record<string, unknown>)[k] ?? null, (now as Record<string, unknown>)[k] ?? null, path ? `${path}.${k}` : k));
  }
  return out;
}

// ---- bytes -------------------------------------------------------------------------------------

function asBytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function text(b: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: true }).decode(b);
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE, as zlib). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
