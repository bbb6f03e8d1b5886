// Demo links: a URL that reopens the studio with a model, a dataset reference, hyperparameters, a
// preset prompt with sampling settings, and optionally a trained adapter — by reference (a Hub
// repo or an https adapter folder) or, when small, embedded in the link itself.
//
//   https://<origin>/#demo=<payload>
//
// The payload lives in the URL fragment, which browsers never send to a server. It is URL-safe
// base64 (no padding) of a binary container:
//
//   byte 0      format version (1)
//   bytes 1–4   CRC-32 (big-endian) of bytes 5.. — catches bit flips and truncation
//   bytes 5–8   size of the inflated body (big-endian u32), at most MAX_INFLATED_BYTES
//   bytes 9..   the body, raw DEFLATE
//   body:       u32 JSON length | JSON (UTF-8, "v": 1) | attachment (embedded adapter_model.safetensors,
//               byte-plane shuffled when "shuffle": 4 — F32 exponents compress far better that way)
//
// decodeDemoLink validates everything before returning anything, and throws a DemoLinkError with a
// clear message otherwise (never a partial result): the version; the size of the link, of the
// compressed container, of the inflated body (inflation stops as soon as it passes the declared size
// or the cap, so a deflate bomb costs nothing); the checksum; the JSON's shape — no field other than
// the known ones, every type and range checked; Hub repo ids and revisions against the Hub's
// patterns; the adapter URL (https only, or http://localhost when allowed for tests; no user info,
// query or fragment); no access tokens (hf_…) anywhere; no local paths; and an embedded adapter
// through the safetensors header parser, the PEFT config parser and a per-tensor check of names,
// dtypes, shapes, ranks, layer coverage and finite values.
//
// Safety: nothing in a link can execute code or make the studio reach a host other than the Hub
// endpoint and the adapter URL it names.
//   - The payload is data: JSON.parse (no reviver), raw bytes, and a fixed schema; decoding
//     performs no I/O. Strings (title, prompt, names) are plain text for the UI to show as text.
//   - A link carries no endpoint. Model, dataset and Hub-adapter references are repo ids, whose
//     pattern ([A-Za-z0-9_.-], one "/", no "..") cannot name a host, a scheme or a path outside the
//     repo; the studio resolves them against its own Hub endpoint (demoLinkFetches lists the URLs).
//   - The only host a link can name is the adapter URL's; the loader fetches exactly
//     <url>/adapter_config.json and <url>/adapter_model.safetensors from it.
//   - Adapters (embedded or fetched) are safetensors tensors and a JSON config: no pickles, no code.
// No DOM or Node APIs (fflate, TextEncoder, atob/btoa only).

import { Inflate, deflateSync } from 'fflate';
import { parseHeader, readHeaderLength } from '../formats/safetensors.ts';
import { toFloat32 } from '../formats/dtypes.ts';
import { LORA_MODULES, type LoraModule } from '../train/lora-config.ts';
import { SCHEDULE_KINDS, type ScheduleKind } from '../train/train-config.ts';
import { loraTensorName, parseAdapterConfig, parseLoraTensorName } from '../train/peft.ts';
import {
  checkAdapterUrl,
  containsToken,
  adapterFileUrl,
  hubFileUrl,
  isHubRepoId,
  isRevision,
  looksLikeLocalPath,
  RefError,
  type DatasetRef,
} from './refs.ts';

export const DEMO_LINK_VERSION = 1;
export const DEMO_PARAM = 'demo';
/** Largest compressed container encodeDemoLink produces when it embeds an adapter (~100 KB). */
export const MAX_EMBEDDED_BYTES = 100 * 1024;
/** Largest compressed container decodeDemoLink accepts. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
/** Largest payload, in base64 characters. */
export const MAX_PAYLOAD_CHARS = Math.ceil(MAX_PAYLOAD_BYTES / 3) * 4;
/** Largest inflated body (JSON + embedded adapter). */
export const MAX_INFLATED_BYTES = 4 * 1024 * 1024;
export const MAX_JSON_BYTES = 64 * 1024;
export const MAX_ADAPTER_CONFIG_CHARS = 16 * 1024;
export const MAX_PROMPT_CHARS = 8000;
export const MAX_TITLE_CHARS = 200;

export type DemoLinkErrorCode = 'malformed' | 'damaged' | 'version' | 'too-large' | 'invalid' | 'unsafe';

export class DemoLinkError extends Error {
  constructor(
    readonly code: DemoLinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DemoLinkError';
  }
}

// ---- the decoded link -------------------------------------------------------------------------

export interface DemoModel {
  /** Hub repo id of the base model. */
  repo: string;
  /** Branch, tag or commit (default: main). */
  revision?: string;
}

export interface DemoLora {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: LoraModule[];
  useRslora: boolean;
  seed?: number;
}

export interface DemoTrain {
  lr?: number;
  maxSteps?: number;
  epochs?: number;
  batchSize?: number;
  gradAccum?: number;
  seqLen?: number;
  schedule?: ScheduleKind;
  warmupSteps?: number;
  warmupRatio?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  evalSplit?: number;
  seed?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface DemoPrompt {
  system?: string;
  user: string;
}

export interface DemoSampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  seed?: number;
}

export type DemoAdapter =
  /** A published adapter: a Hub model repo holding adapter_config.json + adapter_model.safetensors. */
  | { kind: 'hub'; repo: string; revision?: string }
  /** An https URL of a folder holding adapter_config.json + adapter_model.safetensors. */
  | { kind: 'url'; url: string }
  /** The adapter itself: adapter_config.json text and adapter_model.safetensors bytes. */
  | { kind: 'embedded'; config: string; weights: Uint8Array };

export interface DemoLink {
  model: DemoModel;
  title?: string;
  dataset?: DatasetRef;
  lora?: DemoLora;
  train?: DemoTrain;
  prompt?: DemoPrompt;
  sampling?: DemoSampling;
  adapter?: DemoAdapter;
}

export interface LinkOptions {
  /** Accept http://localhost adapter URLs (local test servers). Default false: https only. */
  allowHttpLocalhost?: boolean;
}

// ---- schema ----------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

const invalid = (m: string) => new DemoLinkError('invalid', `invalid demo link: ${m}`);
const unsafe = (m: string) => new DemoLinkError('unsafe', `unsafe demo link: ${m}`);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  if (typeof v === 'number') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

function object(v: unknown, path: string, allowed: readonly string[], required: readonly string[] = []): Obj {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${path} must be an object, got ${kind(v)}`);
  const o = v as Obj;
  const keys = Object.keys(o);
  const unknown = keys.filter((k) => !allowed.includes(k));
  if (unknown.length) throw invalid(`${path} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (allowed: ${allowed.join(', ')})`);
  for (const k of required) if (!Object.hasOwn(o, k)) throw invalid(`${path}.${k} is missing`);
  return o;
}

function num(o: Obj, key: string, path: string, lo: number, hi: number, opts: { int?: boolean; loOpen?: boolean; hiOpen?: boolean } = {}): number {
  const v = o[key];
  const range = `${opts.loOpen ? '(' : '['}${lo}, ${hi}${opts.hiOpen ? ')' : ']'}`;
  const what = `${path}.${key} must be ${opts.int ? 'an integer' : 'a number'} in ${range}, got ${kind(v)}`;
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v))) throw invalid(what);
  if (v < lo || v > hi || (opts.loOpen && v === lo) || (opts.hiOpen && v === hi)) throw invalid(what);
  return v;
}

/** Text: no control characters other than tab / newline / carriage return (when multiline), no tokens. */
function text(o: Obj, key: string, path: string, max: number, opts: { multiline?: boolean; min?: number } = {}): string {
  const v = o[key];
  if (typeof v !== 'string') throw invalid(`${path}.${key} must be a string, got ${kind(v)}`);
  if (v.length < (opts.min ?? 0)) throw invalid(`${path}.${key} is empty`);
  if (v.length > max) throw invalid(`${path}.${key} is ${v.length} characters, more than ${max}`);
  const ctl = opts.multiline ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/ : /[\u0000-\u001f\u007f-\u009f]/;
  if (ctl.test(v)) throw invalid(`${path}.${key} contains control characters`);
  if (containsToken(v)) throw unsafe(`${path}.${key} contains something that looks like an access token (hf_…); links never carry tokens`);
  return v;
}

function repoId(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (typeof v === 'string' && looksLikeLocalPath(v) && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v.replace(/^file:/i, ''))) throw unsafe(`${path}.${key} ${kind(v)} is a local path; links name models and datasets by Hub repo id`);
  if (!isHubRepoId(v)) throw invalid(`${path}.${key} must be a Hub repo id like "owner/name", got ${kind(v)}`);
  if (containsToken(v)) throw unsafe(`${path}.${key} looks like an access token`);
  return v;
}

function revision(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (!isRevision(v)) throw invalid(`${path}.${key} must be a branch, tag or commit name, got ${kind(v)}`);
  return v;
}

function plainName(o: Obj, key: string, path: string): string {
  const v = text(o, key, path, 200, { min: 1 });
  if (looksLikeLocalPath(v) || /[/\\]/.test(v) || v === '.' || v === '..' || v.startsWith('~')) {
    throw unsafe(`${path}.${key} ${kind(v)} is a path; a dataset that is not on the Hub is named by its file name only`);
  }
  return v;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

function checkModel(v: unknown): DemoModel {
  const o = object(v, 'model', ['repo', 'revision'], ['repo']);
  const out: DemoModel = { repo: repoId(o, 'repo', 'model') };
  if (Object.hasOwn(o, 'revision')) out.revision = revision(o, 'revision', 'model');
  return out;
}

function checkDataset(v: unknown): DatasetRef {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, 'name')) {
    const o = object(v, 'dataset', ['name'], ['name']);
    return { name: plainName(o, 'name', 'dataset') };
  }
  const o = object(v, 'dataset', ['hub', 'config', 'split'], ['hub']);
  const out: { hub: string; config?: string; split?: string } = { hub: repoId(o, 'hub', 'dataset') };
  for (const k of ['config', 'split'] as const) {
    if (!Object.hasOwn(o, k)) continue;
    if (typeof o[k] !== 'string' || !NAME_RE.test(o[k] as string)) throw invalid(`dataset.${k} must be a name of letters, digits, "_", "." or "-", got ${kind(o[k])}`);
    out[k] = o[k] as string;
  }
  return out;
}

function checkLora(v: unknown): DemoLora {
  const o = object(v, 'lora', ['r', 'alpha', 'dropout', 'targetModules', 'useRslora', 'seed'], ['r', 'alpha', 'dropout', 'targetModules', 'useRslora']);
  const tm = o.targetModules;
  if (!Array.isArray(tm) || tm.length === 0 || tm.length > LORA_MODULES.length) throw invalid(`lora.targetModules must be a non-empty list of ${LORA_MODULES.join(', ')}, got ${kind(tm)}`);
  for (const m of tm) if (!(LORA_MODULES as readonly unknown[]).includes(m)) throw invalid(`lora.targetModules: unknown module ${kind(m)} (expected some of ${LORA_MODULES.join(', ')})`);
  if (new Set(tm).size !== tm.length) throw invalid('lora.targetModules lists a module twice');
  if (typeof o.useRslora !== 'boolean') throw invalid(`lora.useRslora must be true or false, got ${kind(o.useRslora)}`);
  const out: DemoLora = {
    r: num(o, 'r', 'lora', 1, 4096, { int: true }),
    alpha: num(o, 'alpha', 'lora', 0, 1e6, { loOpen: true }),
    dropout: num(o, 'dropout', 'lora', 0, 1, { hiOpen: true }),
    targetModules: LORA_MODULES.filter((m) => tm.includes(m)),
    useRslora: o.useRslora,
  };
  if (Object.hasOwn(o, 'seed')) out.seed = num(o, 'seed', 'lora', 0, 0xffffffff, { int: true });
  return out;
}

const TRAIN_RANGES: Record<Exclude<keyof DemoTrain, 'schedule'>, [number, number, { int?: boolean; loOpen?: boolean; hiOpen?: boolean }]> = {
  lr: [0, 1, { loOpen: true }],
  maxSteps: [0, 10_000_000, { int: true }],
  epochs: [0, 10_000, { int: true }],
  batchSize: [1, 4096, { int: true }],
  gradAccum: [1, 65536, { int: true }],
  seqLen: [2, 1_048_576, { int: true }],
  warmupSteps: [0, 10_000_000, { int: true }],
  warmupRatio: [0, 1, {}],
  weightDecay: [0, 10, {}],
  maxGradNorm: [0, 1e6, {}],
  evalSplit: [0, 10_000_000, {}],
  seed: [0, 0xffffffff, { int: true }],
  beta1: [0, 1, { hiOpen: true }],
  beta2: [0, 1, { hiOpen: true }],
  eps: [0, 1, { loOpen: true }],
};

function checkTrain(v: unknown): DemoTrain {
  const keys = [...Object.keys(TRAIN_RANGES), 'schedule'];
  const o = object(v, 'train', keys);
  const out: DemoTrain = {};
  for (const k of keys) {
    if (!Object.hasOwn(o, k)) continue;
    if (k === 'schedule') {
      if (!SCHEDULE_KINDS.includes(o.schedule as ScheduleKind)) throw invalid(`train.schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got ${kind(o.schedule)}`);
      out.schedule = o.schedule as ScheduleKind;
      continue;
    }
    const [lo, hi, opts] = TRAIN_RANGES[k as keyof typeof TRAIN_RANGES];
    const x = num(o, k, 'train', lo, hi, opts);
    if (k === 'evalSplit' && x > 0.5 && !Number.isInteger(x)) throw invalid(`train.evalSplit must be a fraction in [0, 0.5] or a whole number of examples, got ${x}`);
    (out as Record<string, number>)[k] = x;
  }
  return out;
}

function checkPrompt(v: unknown): DemoPrompt {
  const o = object(v, 'prompt', ['system', 'user'], ['user']);
  const out: DemoPrompt = { user: text(o, 'user', 'prompt', MAX_PROMPT_CHARS, { multiline: true, min: 1 }) };
  if (Object.hasOwn(o, 'system')) out.system = text(o, 'system', 'prompt', MAX_PROMPT_CHARS, { multiline: true });
  return out;
}

function checkSampling(v: unknown): DemoSampling {
  const o = object(v, 'sampling', ['temperature', 'topP', 'topK', 'repetitionPenalty', 'maxNewTokens', 'seed']);
  const out: DemoSampling = {};
  if (Object.hasOwn(o, 'temperature')) out.temperature = num(o, 'temperature', 'sampling', 0, 10);
  if (Object.hasOwn(o, 'topP')) out.topP = num(o, 'topP', 'sampling', 0, 1, { loOpen: true });
  if (Object.hasOwn(o, 'topK')) out.topK = num(o, 'topK', 'sampling', 0, 1_000_000, { int: true });
  if (Object.hasOwn(o, 'repetitionPenalty')) out.repetitionPenalty = num(o, 'repetitionPenalty', 'sampling', 0, 10, { loOpen: true });
  if (Object.hasOwn(o, 'maxNewTokens')) out.maxNewTokens = num(o, 'maxNewTokens', 'sampling', 1, 32768, { int: true });
  if (Object.hasOwn(o, 'seed')) out.seed = num(o, 'seed', 'sampling', 0, 0xffffffff, { int: true });
  return out;
}

function checkUrl(url: unknown, path: string, opts: LinkOptions): string {
  if (typeof url !== 'string') throw invalid(`${path} must be a string, got ${kind(url)}`);
  try {
    return checkAdapterUrl(url, opts);
  } catch (e) {
    if (e instanceof RefError) throw unsafe(`${path}: ${e.message}`);
    throw e;
  }
}

/** The wire form of the adapter field (embedded: config text, attachment size and shuffle). */
interface WireEmbedded {
  kind: 'embedded';
  config: string;
  size: number;
  shuffle: 1 | 4;
}

function checkWireAdapter(v: unknown, opts: LinkOptions): Exclude<DemoAdapter, { kind: 'embedded' }> | WireEmbedded {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid(`adapter must be an object, got ${kind(v)}`);
  const k = (v as Obj).kind;
  if (k === 'hub') {
    const o = object(v, 'adapter', ['kind', 'repo', 'revision'], ['repo']);
    const out: Extract<DemoAdapter, { kind: 'hub' }> = { kind: 'hub', repo: repoId(o, 'repo', 'adapter') };
    if (Object.hasOwn(o, 'revision')) out.revision = revision(o, 'revision', 'adapter');
    return out;
  }
  if (k === 'url') {
    const o = object(v, 'adapter', ['kind', 'url'], ['url']);
    return { kind: 'url', url: checkUrl(o.url, 'adapter.url', opts) };
  }
  if (k === 'embedded') {
    const o = object(v, 'adapter', ['kind', 'config', 'size', 'shuffle'], ['config', 'size', 'shuffle']);
    const config = text(o, 'config', 'adapter', MAX_ADAPTER_CONFIG_CHARS, { multiline: true, min: 2 });
    const size = num(o, 'size', 'adapter', 16, MAX_INFLATED_BYTES, { int: true });
    if (o.shuffle !== 1 && o.shuffle !== 4) throw invalid(`adapter.shuffle must be 1 or 4, got ${kind(o.shuffle)}`);
    return { kind: 'embedded', config, size, shuffle: o.shuffle };
  }
  throw invalid(`adapter.kind must be "hub", "url" or "embedded", got ${kind(k)}`);
}

const TOP_KEYS = ['v', 'model', 'title', 'dataset', 'lora', 'train', 'prompt', 'sampling', 'adapter'];

/** Validates the JSON part; returns the link without the embedded bytes, and the embedded spec. */
function checkWire(json: unknown, opts: LinkOptions): { link: DemoLink; embedded: WireEmbedded | null } {
  const o = object(json, 'the link', TOP_KEYS, ['v', 'model']);
  if (o.v !== DEMO_LINK_VERSION) throw new DemoLinkError('version', `demo link version ${kind(o.v)} is not supported (this studio reads version ${DEMO_LINK_VERSION})`);
  const link: DemoLink = { model: checkModel(o.model) };
  if (Object.hasOwn(o, 'title')) link.title = text(o, 'title', 'link', MAX_TITLE_CHARS, { min: 1 });
  if (Object.hasOwn(o, 'dataset')) link.dataset = checkDataset(o.dataset);
  if (Object.hasOwn(o, 'lora')) link.lora = checkLora(o.lora);
  if (Object.hasOwn(o, 'train')) link.train = checkTrain(o.train);
  if (Object.hasOwn(o, 'prompt')) link.prompt = checkPrompt(o.prompt);
  if (Object.hasOwn(o, 'sampling')) link.sampling = checkSampling(o.sampling);
  let embedded: WireEmbedded | null = null;
  if (Object.hasOwn(o, 'adapter')) {
    const a = checkWireAdapter(o.adapter, opts);
    if (a.kind === 'embedded') embedded = a;
    else link.adapter = a;
  }
  return { link, embedded };
}

// ---- embedded adapters -----------------------------------------------------------------------

/**
 * Checks an adapter's two files without the base model at hand: a valid safetensors file holding
 * exactly lora_A / lora_B (PEFT names) for every target module of every layer 0..L-1, F32/F16/BF16,
 * 2-D, rank r, consistent shapes across layers, finite values; a config that PEFT's parser accepts,
 * agreeing with the tensors, whose base model (if set) is a Hub repo id. Shapes against the model
 * are checked again when the adapter is loaded (loadAdapter).
 */
export function checkEmbeddedAdapter(config: string, weights: Uint8Array, expectBase?: string): { r: number; numLayers: number; targetModules: LoraModule[] } {
  const bad = (m: string) => invalid(`embedded adapter: ${m}`);
  if (containsToken(config)) throw unsafe('embedded adapter_config.json contains something that looks like an access token');
  let header;
  try {
    const n = readHeaderLength(weights, 'adapter_model.safetensors');
    header = parseHeader(weights.subarray(0, Math.min(weights.byteLength, 8 + n)), { fileLength: weights.byteLength, source: 'adapter_model.safetensors' });
  } catch (e) {
    throw bad((e as Error).message);
  }
  const headerText = new TextDecoder().decode(weights.subarray(8, header.dataStart));
  if (containsToken(headerText)) throw unsafe('embedded adapter_model.safetensors metadata contains something that looks like an access token');
  let r = 0;
  let numLayers = 0;
  const shapes = new Map<string, [number, number]>(); // module.part → shape
  const seen = new Set<string>();
  for (const t of header.tensors) {
    const p = parseLoraTensorName(t.name);
    if (!p || p.adapter !== null || loraTensorName(p.layer, p.module, p.part) !== t.name) throw bad(`unexpected tensor ${JSON.stringify(t.name)} (only PEFT lora_A / lora_B weights)`);
    if (!['F32', 'F16', 'BF16'].includes(t.dtype)) throw bad(`${t.name}: dtype ${t.dtype}, expected F32, F16 or BF16`);
    if (t.shape.length !== 2 || t.shape[0]! < 1 || t.shape[1]! < 1) throw bad(`${t.name}: shape [${t.shape.join(', ')}] is not a 2-D matrix`);
    if (p.layer >= 1024) throw bad(`${t.name}: layer ${p.layer} is out of range`);
    const rank = p.part === 'A' ? t.shape[0]! : t.shape[1]!;
    if (r && rank !== r) throw bad(`${t.name}: rank ${rank}, but other tensors have rank ${r}`);
    r = rank;
    const key = `${p.module}.${p.part}`;
    const prev = shapes.get(key);
    if (prev && (prev[0] !== t.shape[0] || prev[1] !== t.shape[1])) throw bad(`${t.name}: shape [${t.shape.join(', ')}] differs from [${prev.join(', ')}] in other layers`);
    shapes.set(key, [t.shape[0]!, t.shape[1]!]);
    seen.add(t.name);
    numLayers = Math.max(numLayers, p.layer + 1);
  }
  if (!header.tensors.length) throw bad('adapter_model.safetensors holds no tensors');
  const modules = LORA_MODULES.filter((m) => shapes.has(`${m}.A`) || shapes.has(`${m}.B`));
  for (let l = 0; l < numLayers; l++) {
    for (const m of modules) for (const part of ['A', 'B'] as const) if (!seen.has(loraTensorName(l, m, part))) throw bad(`${loraTensorName(l, m, part)} is missing`);
  }
  let parsed;
  try {
    parsed = parseAdapterConfig(config, 'adapter_config.json', { numLayers });
  } catch (e) {
    throw bad((e as Error).message);
  }
  const c = parsed.config;
  if (c.r !== r) throw bad(`adapter_config.json says r=${c.r}, the tensors have rank ${r}`);
  if (c.targetModules.join() !== modules.join()) throw bad(`adapter_config.json targets ${c.targetModules.join(', ')}, the tensors cover ${modules.join(', ')}`);
  const base = parsed.baseModel;
  if (base !== null) {
    if (looksLikeLocalPath(base)) throw unsafe(`embedded adapter_config.json names its base model by a local path (${JSON.stringify(base)})`);
    if (!isHubRepoId(base)) throw bad(`adapter_config.json base_model_name_or_path ${JSON.stringify(base)} is not a Hub repo id`);
    if (expectBase !== undefined && base !== expectBase) throw bad(`the adapter was trained on ${base}, but the link loads ${expectBase}`);
  }
  for (const t of header.tensors) {
    const data = toFloat32(t.dtype, weights.subarray(header.dataStart + t.begin, header.dataStart + t.end));
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) throw bad(`${t.name} holds NaN or infinite values`);
  }
  return { r, numLayers, targetModules: modules };
}

/** Byte-plane shuffle with stride 4 (byte k of every 4-byte word together); the tail stays. */
function shuffle4(b: Uint8Array): Uint8Array {
  const n = b.byteLength >> 2;
  const out = new Uint8Array(b.byteLength);
  for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) out[k * n + i] = b[4 * i + k]!;
  out.set(b.subarray(4 * n), 4 * n);
  return out;
}

function unshuffle4(b: Uint8Array): Uint8Array {
  const n = b.byteLength >> 2;
  const out = new Uint8Array(b.byteLength);
  for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) out[4 * i + k] = b[k * n + i]!;
  out.set(b.subarray(4 * n), 4 * n);
  return out;
}

// ---- container: CRC-32, base64url, guarded inflate --------------------------------------------

let CRC_TABLE: Uint32Array | null = null;

export function crc32(b: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function base64UrlEncode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function base64UrlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new DemoLinkError('malformed', 'the demo link is damaged: its payload is not URL-safe base64');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (base64UrlEncode(out) !== s) throw new DemoLinkError('damaged', 'the demo link is damaged: its payload is not canonical base64');
  return out;
}

/** Inflates raw DEFLATE data, never producing more than `expected` bytes; the result must be exactly that long. */
function inflateGuarded(data: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let at = 0;
  let ended = false;
  let over = false;
  const inf = new Inflate((chunk, final) => {
    if (at + chunk.byteLength > expected) over = true;
    else {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    if (final) ended = true;
  });
  const damaged = (why: string) => new DemoLinkError('damaged', `the demo link is damaged or was altered (${why})`);
  try {
    // Small input slices: one slice can inflate to at most ~1 MB, so the cap holds as we go.
    for (let i = 0; i < data.length && !over; i += 1024) inf.push(data.subarray(i, i + 1024), i + 1024 >= data.length);
  } catch (e) {
    throw damaged(`compressed data: ${(e as Error).message}`);
  }
  if (over) throw damaged(`it inflates past the ${expected} bytes it declares`);
  if (!ended || at !== expected) throw damaged(`it inflates to ${at} bytes, not the ${expected} it declares`);
  return out;
}

// ---- encode / decode -------------------------------------------------------------------------

/** Validates a DemoLink (the same checks as decoding) and returns a normalized copy. */
export function checkDemoLink(demo: DemoLink, opts: LinkOptions = {}): DemoLink {
  const w = demo?.adapter?.kind === 'embedded' ? demo.adapter.weights : null;
  if (w && w.byteLength > MAX_INFLATED_BYTES) {
    throw new DemoLinkError('too-large', `the adapter is ${Math.round(w.byteLength / 1024)} KB, more than a link can embed; publish it and link to it (adapter URL or Hub repo)`);
  }
  const wire: Obj = toWire(demo, 0, 1);
  const { link, embedded } = checkWire(JSON.parse(JSON.stringify(wire)), opts);
  if (embedded && demo.adapter?.kind === 'embedded') {
    const weights = demo.adapter.weights;
    if (!(weights instanceof Uint8Array)) throw invalid('adapter.weights must be bytes (a Uint8Array)');
    checkEmbedded(link, embedded.config, weights);
    link.adapter = { kind: 'embedded', config: embedded.config, weights: new Uint8Array(weights) };
  }
  return link;
}

function checkEmbedded(link: DemoLink, config: string, weights: Uint8Array): void {
  const info = checkEmbeddedAdapter(config, weights, link.model.repo);
  const l = link.lora;
  if (l) {
    const parsed = parseAdapterConfig(config, 'adapter_config.json', { numLayers: info.numLayers }).config;
    if (l.r !== parsed.r || l.alpha !== parsed.alpha || l.useRslora !== parsed.useRslora || l.targetModules.join() !== parsed.targetModules.join()) {
      throw invalid('lora settings differ from the embedded adapter_config.json');
    }
  }
}

/** The JSON object written into the link (embedded adapter: its config text, size and shuffle). */
function toWire(demo: DemoLink, size: number, shuffle: 1 | 4): Obj {
  if (!demo || typeof demo !== 'object') throw invalid('expected a demo link object');
  const out: Obj = { v: DEMO_LINK_VERSION };
  for (const [k, v] of Object.entries(demo)) {
    if (v === undefined) continue;
    if (k === 'adapter' && v && typeof v === 'object' && (v as DemoAdapter).kind === 'embedded') {
      const a = v as Extract<DemoAdapter, { kind: 'embedded' }>;
      const extra = Object.keys(a).filter((x) => !['kind', 'config', 'weights'].includes(x));
      if (extra.length) throw invalid(`adapter has unknown field ${JSON.stringify(extra[0])}`);
      out.adapter = { kind: 'embedded', config: a.config, size: size || Math.max(16, a.weights?.byteLength ?? 0), shuffle };
    } else out[k] = v;
  }
  return out;
}

export interface EncodeOptions extends LinkOptions {
  /** Where the studio is served, e.g. https://studio.example.org/ (https, or http://localhost). */
  origin: string;
  /** Largest compressed payload when an adapter is embedded (default MAX_EMBEDDED_BYTES). */
  maxEmbeddedBytes?: number;
}

/** The payload (what follows "#demo=") and its compressed size in bytes. */
export function encodeDemoPayload(demo: DemoLink, opts: LinkOptions & { maxEmbeddedBytes?: number } = {}): { payload: string; bytes: number } {
  const link = checkDemoLink(demo, opts);
  const embedded = link.adapter?.kind === 'embedded' ? link.adapter : null;
  const build = (shuffle: 1 | 4): Uint8Array => {
    const attachment = embedded ? (shuffle === 4 ? shuffle4(embedded.weights) : embedded.weights) : new Uint8Array(0);
    const json = new TextEncoder().encode(JSON.stringify(toWire(link, attachment.byteLength, shuffle)));
    if (json.byteLength > MAX_JSON_BYTES) throw new DemoLinkError('too-large', `the link's settings take ${json.byteLength} bytes, more than ${MAX_JSON_BYTES}`);
    const body = new Uint8Array(4 + json.byteLength + attachment.byteLength);
    new DataView(body.buffer).setUint32(0, json.byteLength);
    body.set(json, 4);
    body.set(attachment, 4 + json.byteLength);
    if (body.byteLength > MAX_INFLATED_BYTES) {
      throw new DemoLinkError('too-large', `the adapter is ${Math.round(attachment.byteLength / 1024)} KB, more than a link can embed; publish it and link to it (adapter URL or Hub repo)`);
    }
    const deflated = deflateSync(body, { level: 9 });
    const out = new Uint8Array(9 + deflated.byteLength);
    const dv = new DataView(out.buffer);
    out[0] = DEMO_LINK_VERSION;
    dv.setUint32(5, body.byteLength);
    out.set(deflated, 9);
    dv.setUint32(1, crc32(out.subarray(5)));
    return out;
  };
  let bin = build(1);
  if (embedded) {
    const alt = build(4);
    if (alt.byteLength < bin.byteLength) bin = alt;
    const limit = Math.min(opts.maxEmbeddedBytes ?? MAX_EMBEDDED_BYTES, MAX_PAYLOAD_BYTES);
    if (bin.byteLength > limit) {
      throw new DemoLinkError(
        'too-large',
        `the adapter compresses to ${(bin.byteLength / 1024).toFixed(1)} KB, more than the ${Math.round(limit / 1024)} KB a link can embed; publish it (a Hub repo or an https folder) and link to it instead`,
      );
    }
  }
  if (bin.byteLength > MAX_PAYLOAD_BYTES) throw new DemoLinkError('too-large', `the link's payload is ${bin.byteLength} bytes, more than ${MAX_PAYLOAD_BYTES}`);
  return { payload: base64UrlEncode(bin), bytes: bin.byteLength };
}

/** The studio origin for links: https (or http://localhost), no user info, query or fragment. */
function checkOrigin(origin: string): URL {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    throw new DemoLinkError('invalid', `origin ${JSON.stringify(origin)} is not an absolute URL`);
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local)) throw new DemoLinkError('invalid', `origin ${JSON.stringify(origin)} must be https (or http://localhost)`);
  if (u.username || u.password || u.search || u.hash) throw new DemoLinkError('invalid', `origin ${JSON.stringify(origin)} must not have user info, a query or a fragment`);
  return u;
}

/** `https://<origin>/#demo=<payload>`. Throws a DemoLinkError (code 'too-large' when an embedded adapter does not fit). */
export function encodeDemoLink(demo: DemoLink, opts: EncodeOptions): string {
  const u = checkOrigin(opts.origin);
  const { payload } = encodeDemoPayload(demo, opts);
  u.hash = `${DEMO_PARAM}=${payload}`;
  return u.href;
}

/** Whether a URL or fragment carries a demo link (a cheap test; decodeDemoLink validates). */
export function hasDemoLink(urlOrHash: string): boolean {
  const i = urlOrHash.indexOf('#');
  return (i >= 0 ? urlOrHash.slice(i + 1) : urlOrHash).startsWith(`${DEMO_PARAM}=`);
}

/**
 * Decodes and validates a demo link: a full URL, its fragment ("#demo=…") or "demo=…". Throws a
 * DemoLinkError naming the problem; returns nothing partial.
 */
export function decodeDemoLink(urlOrHash: string, opts: LinkOptions = {}): DemoLink {
  if (typeof urlOrHash !== 'string') throw new DemoLinkError('malformed', 'not a demo link (expected a URL)');
  if (urlOrHash.length > MAX_PAYLOAD_CHARS + 4096) {
    throw new DemoLinkError('too-large', `the demo link is ${urlOrHash.length} characters; links hold at most ${MAX_PAYLOAD_CHARS} characters of payload`);
  }
  const i = urlOrHash.indexOf('#');
  const frag = i >= 0 ? urlOrHash.slice(i + 1) : urlOrHash;
  if (!frag.startsWith(`${DEMO_PARAM}=`)) throw new DemoLinkError('malformed', `not a demo link: the URL has no #${DEMO_PARAM}=… part`);
  const payload = frag.slice(DEMO_PARAM.length + 1);
  if (!payload) throw new DemoLinkError('malformed', 'the demo link is empty');
  if (payload.length > MAX_PAYLOAD_CHARS) throw new DemoLinkError('too-large', `the demo link's payload is ${payload.length} characters, more than ${MAX_PAYLOAD_CHARS}`);
  const bin = base64UrlDecode(payload);
  if (bin.byteLength < 10) throw new DemoLinkError('damaged', `the demo link is damaged or truncated (${bin.byteLength} bytes)`);
  if (bin[0] !== DEMO_LINK_VERSION) {
    throw new DemoLinkError('version', `demo link format ${bin[0]} is not supported (this studio reads format ${DEMO_LINK_VERSION}; the link may come from a newer studio)`);
  }
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  if (crc32(bin.subarray(5)) !== dv.getUint32(1)) throw new DemoLinkError('damaged', 'the demo link is damaged, truncated or was altered (checksum mismatch)');
  const size = dv.getUint32(5);
  if (size > MAX_INFLATED_BYTES) throw new DemoLinkError('too-large', `the demo link declares ${size} bytes of content, more than the ${MAX_INFLATED_BYTES} allowed`);
  if (size < 6) throw new DemoLinkError('damaged', 'the demo link is damaged (empty content)');
  const body = inflateGuarded(bin.subarray(9), size);
  const jsonLen = new DataView(body.buffer).getUint32(0);
  if (jsonLen > MAX_JSON_BYTES || 4 + jsonLen > body.byteLength) throw new DemoLinkError('damaged', 'the demo link is damaged (bad settings length)');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(4, 4 + jsonLen)));
  } catch (e) {
    throw new DemoLinkError('malformed', `the demo link's settings are not valid JSON (${(e as Error).message})`);
  }
  const { link, embedded } = checkWire(json, opts);
  const rest = body.subarray(4 + jsonLen);
  if (!embedded) {
    if (rest.byteLength) throw invalid(`${rest.byteLength} unexpected bytes after the settings`);
    return link;
  }
  if (rest.byteLength !== embedded.size) throw invalid(`the embedded adapter is ${rest.byteLength} bytes, the link declares ${embedded.size}`);
  const weights = embedded.shuffle === 4 ? unshuffle4(rest) : new Uint8Array(rest);
  checkEmbedded(link, embedded.config, weights);
  link.adapter = { kind: 'embedded', config: embedded.config, weights };
  return link;
}

// ---- what opening a link fetches ---------------------------------------------------------------

export interface DemoLinkFetches {
  /** Base of the model's files: {hub}/{repo}/resolve/{revision}/ (config.json, weights, tokenizer). */
  modelBase: string;
  /** Adapter files to fetch (none when embedded or absent). */
  adapter: string[];
}

/** Every URL (or URL prefix) the studio may fetch to open `demo`, given its own Hub endpoint. */
export function demoLinkFetches(demo: DemoLink, hubEndpoint: string): DemoLinkFetches {
  const rev = demo.model.revision ?? 'main';
  const modelBase = hubFileUrl(hubEndpoint, demo.model.repo, rev, 'x').replace(/x$/, '');
  const files = ['adapter_config.json', 'adapter_model.safetensors'];
  const a = demo.adapter;
  let adapter: string[] = [];
  if (a?.kind === 'hub') adapter = files.map((f) => hubFileUrl(hubEndpoint, a.repo, a.revision ?? 'main', f));
  else if (a?.kind === 'url') adapter = files.map((f) => adapterFileUrl(a.url, f));
  return { modelBase, adapter };
}

/** The origins a link makes the studio contact: the Hub endpoint's, and the adapter URL's if any. */
export function demoLinkOrigins(demo: DemoLink, hubEndpoint: string): string[] {
  const f = demoLinkFetches(demo, hubEndpoint);
  return [...new Set([f.modelBase, ...f.adapter].map((u) => new URL(u).origin))];
}
