// Choosing the next token from logits on the CPU, as transformers' generate() does it, in its
// order: repetition penalty → temperature → top-k → top-p → sample (greedy when temperature is 0).

export interface SamplingOptions {
  /** 0 = greedy (argmax, first index on ties). Default 0. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1 = off). */
  topP?: number;
  /** > 1 discourages tokens already in the context (HF's rule: logit<0 ? ·p : /p). 1 = off. */
  repetitionPenalty?: number;
}

/** Picks the next token id; `rand` is a seeded [0, 1) source, `context` the ids so far. */
export function sampleToken(logits: Float32Array, context: readonly number[], opts: SamplingOptions, rand: () => number): number {
  const V = logits.length;
  const x = Float64Array.from(logits);
  const penalty = opts.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(context)) {
      if (id >= 0 && id < V) x[id] = x[id]! < 0 ? x[id]! * penalty : x[id]! / penalty;
    }
  }
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) return argmax(x);
  for (let i = 0; i < V; i++) x[i] = x[i]! / temperature;
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => x[b]! - x[a]! || a - b);
  const topK = opts.topK ?? 0;
  if (topK > 0 && topK < V) order = order.slice(0, topK);
  const max = x[order[0]!]!;
  let probs = order.map((i) => Math.exp(x[i]! - max));
  let sum = probs.reduce((s, p) => s + p, 0);
  probs = probs.map((p) => p / sum);
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    // HF keeps tokens whose cumulative probability (ascending) is above 1 − top_p, i.e. the
    // smallest descending prefix reaching top_p; at least one token always stays.
    let cum = 0;
    let keep = 0;
    while (keep < probs.length) {
      cum += probs[keep]!;
      keep++;
      if (cum >= topP) break;
    }
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((s, p) => s + p, 0);
    probs = probs.map((p) => p / sum);
  }
  let r = rand();
  for (let j = 0; j < probs.length; j++) {
    r -= probs[j]!;
    if (r < 0) return order[j]!;
  }
  return order[order.length - 1]!;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
