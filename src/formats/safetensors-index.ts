// The sharded-checkpoint index `model.safetensors.index.json` (spec §6.2):
// `{"metadata": {"total_size": n, ...}, "weight_map": {tensor: shard file}}`.
// Parse and validate it, name shards like huggingface_hub, and write it like transformers
// (indent 2, sorted keys, ASCII-escaped, trailing newline). No DOM or Node APIs.

import { SafetensorsError, compareCodePoints, findDuplicateKey } from './safetensors.ts';

export const INDEX_FILE = 'model.safetensors.index.json';

export interface SafetensorsIndex {
  /** The `metadata` object as written (extra fields kept); {} when absent. */
  metadata: Record<string, unknown>;
  /** `metadata.total_size`: bytes of tensor data over all shards (headers not counted). */
  totalSize: number | null;
  totalParameters: number | null;
  /** Tensor name → shard file. */
  weightMap: Map<string, string>;
  /** Distinct shard files in order (model-00001-of-… first). */
  shards: string[];
  /** Shard file → its tensor names, sorted. */
  tensorsByShard: Map<string, string[]>;
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** `model-00001-of-00002.safetensors` for i = 1, n = 2 (i counts from 1). */
export function shardName(i: number, n: number, prefix = 'model'): string {
  if (!Number.isInteger(i) || !Number.isInteger(n) || i < 1 || i > n) {
    throw new RangeError(`shardName: need integers 1 <= i <= n, got i=${i}, n=${n}`);
  }
  const pad = (x: number) => String(x).padStart(5, '0');
  return `${prefix}-${pad(i)}-of-${pad(n)}.safetensors`;
}

function checkCount(field: string, v: unknown, bad: (m: string) => Error): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`${field} must be a non-negative integer, got ${typeof v === 'number' ? v : kind(v)}`);
  }
  return v;
}

/** Parses and validates index JSON text; errors name the field (and the tensor). */
export function parseIndex(text: string, source = INDEX_FILE): SafetensorsIndex {
  const bad = (m: string) => new SafetensorsError(m, source);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  if (kind(json) !== 'object') throw bad(`must be a JSON object, got ${kind(json)}`);
  const dup = findDuplicateKey(text);
  if (dup) {
    const where = dup.path.length ? `${dup.path.join('.')}: ` : '';
    throw bad(`${where}duplicate key ${JSON.stringify(dup.key)}`);
  }
  const root = json as Record<string, unknown>;

  const meta = root.metadata ?? {};
  if (kind(meta) !== 'object') throw bad(`metadata must be an object, got ${kind(meta)}`);
  const metadata = meta as Record<string, unknown>;
  const totalSize = checkCount('metadata.total_size', metadata.total_size, bad);
  const totalParameters = checkCount('metadata.total_parameters', metadata.total_parameters, bad);

  const wm = root.weight_map;
  if (wm === undefined) throw bad('missing field "weight_map"');
  if (kind(wm) !== 'object') throw bad(`weight_map must be an object of tensor name → shard file, got ${kind(wm)}`);
  const weightMap = new Map<string, string>();
  const tensorsByShard = new Map<string, string[]>();
  for (const [tensor, file] of Object.entries(wm as Record<string, unknown>)) {
    const where = `weight_map[${JSON.stringify(tensor)}]`;
    if (typeof file !== 'string') throw bad(`${where} must be a shard file name, got ${kind(file)}`);
    if (!file.endsWith('.safetensors') || /[/\\]/.test(file) || file.startsWith('.')) {
      throw bad(`${where} = ${JSON.stringify(file)} is not a plain *.safetensors file name`);
    }
    weightMap.set(tensor, file);
    const list = tensorsByShard.get(file);
    if (list) list.push(tensor);
    else tensorsByShard.set(file, [tensor]);
  }
  if (weightMap.size === 0) throw bad('weight_map is empty');
  for (const list of tensorsByShard.values()) list.sort(compareCodePoints);
  const shards = [...tensorsByShard.keys()].sort(compareCodePoints);
  return { metadata, totalSize, totalParameters, weightMap, shards, tensorsByShard };
}

/** Python `json.dumps(v, indent=2, sort_keys=True)` (ensure_ascii on); Maps count as objects. */
function pyDump(v: unknown, indent: string): string {
  if (v === null || typeof v !== 'object') {
    const s = JSON.stringify(v);
    if (s === undefined) throw new TypeError(`buildIndex: cannot write ${typeof v}`);
    return s;
  }
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    return v.length ? `[\n${v.map((x) => inner + pyDump(x, inner)).join(',\n')}\n${indent}]` : '[]';
  }
  const entries = v instanceof Map ? [...(v as Map<string, unknown>)] : Object.entries(v);
  entries.sort(([a], [b]) => compareCodePoints(a, b));
  if (!entries.length) return '{}';
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pyDump(x, inner)}`).join(',\n')}\n${indent}}`;
}

export interface IndexShard {
  /** The shard's file name, e.g. shardName(1, 2). */
  file: string;
  /** Its tensors, e.g. a SafetensorsHeader's `tensors` (numel is needed for total_parameters). */
  tensors: ReadonlyArray<{ name: string; begin: number; end: number; numel?: number }>;
}

/**
 * The index JSON text for `shards`, written like transformers: indent 2, sorted keys, non-ASCII
 * escaped, trailing newline. total_size = bytes of tensor data; `totalParameters` adds
 * metadata.total_parameters; `metadata` adds more fields.
 */
export function buildIndex(
  shards: readonly IndexShard[],
  opts: { totalParameters?: boolean; metadata?: Record<string, unknown> } = {},
): string {
  const weightMap = new Map<string, string>();
  let totalSize = 0;
  let totalParameters = 0;
  for (const shard of shards) {
    for (const t of shard.tensors) {
      if (weightMap.has(t.name)) {
        throw new SafetensorsError(`buildIndex: tensor ${JSON.stringify(t.name)} is in both ${weightMap.get(t.name)} and ${shard.file}`);
      }
      weightMap.set(t.name, shard.file);
      totalSize += t.end - t.begin;
      if (opts.totalParameters) {
        if (t.numel === undefined) throw new SafetensorsError(`buildIndex: tensor ${JSON.stringify(t.name)} has no numel`);
        totalParameters += t.numel;
      }
    }
  }
  const metadata: Record<string, unknown> = { ...opts.metadata, total_size: totalSize };
  if (opts.totalParameters) metadata.total_parameters = totalParameters;
  const text = pyDump(new Map<string, unknown>([['metadata', metadata], ['weight_map', weightMap]]), '');
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}
