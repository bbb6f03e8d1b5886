// Counter-based RNG helpers, bit for bit the same as src/train/rng.ts; pulled into kernel files
// with `//!include rng_lib` (resolved by the kernel registry). A 32-bit output is a pure function
// of (seed, stream, counter): key = mix(mix(seed ^ 0x243f6a88) ^ stream), then
// out = mix(mix(counter ^ key) + key), where mix is Wellons' "lowbias32" integer hash. For a
// fixed key the map counter -> out is a bijection (every step is invertible), so one stream
// never repeats within 2^32 counters. Uniforms are (out >> 8) / 2^24: exact in f32, in [0, 1).
// Dropout: elements 2j and 2j+1 take the low and high 16 bits of draw j (one hash per two
// elements) and are dropped when those bits < threshold, threshold = round(p · 2^16).

fn rng_mix(x_in: u32) -> u32 {
  var x = x_in;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn rng_key(seed: u32, stream: u32) -> u32 {
  return rng_mix(rng_mix(seed ^ 0x243f6a88u) ^ stream);
}

fn rng_u32_key(key: u32, counter: u32) -> u32 {
  return rng_mix(rng_mix(counter ^ key) + key);
}

fn rng_u32(seed: u32, stream: u32, counter: u32) -> u32 {
  return rng_u32_key(rng_key(seed, stream), counter);
}

fn rng_uniform_key(key: u32, counter: u32) -> f32 {
  return f32(rng_u32_key(key, counter) >> 8u) * (1.0 / 16777216.0);
}

fn rng_uniform(seed: u32, stream: u32, counter: u32) -> f32 {
  return rng_uniform_key(rng_key(seed, stream), counter);
}

/** Whether dropout keeps element `counter` (drop probability threshold / 2^16). */
fn rng_keep(key: u32, counter: u32, threshold: u32) -> bool {
  let h = rng_u32_key(key, counter >> 1u);
  return select(h & 0xffffu, h >> 16u, (counter & 1u) == 1u) >= threshold;
}

/**
 * Dropout multipliers of elements counter..counter+3 (counter even: every caller's is a multiple of
 * 4): `scale` (1/(1-p)) where kept, 0 where dropped. Two hashes for four elements.
 */
fn rng_keep_scale4(key: u32, counter: u32, threshold: u32, scale: f32) -> vec4<f32> {
  let h0 = rng_u32_key(key, counter >> 1u);
  let h1 = rng_u32_key(key, (counter >> 1u) + 1u);
  let bits = vec4<u32>(h0 & 0xffffu, h0 >> 16u, h1 & 0xffffu, h1 >> 16u);
  return select(vec4<f32>(0.0), vec4<f32>(scale), bits >= vec4<u32>(threshold));
}
