// Counter-based RNG, bit for bit the same as src/train/rng.ts (copy these helpers into a
// kernel file that needs them; WGSL has no includes). A 32-bit output is a pure function of
// (seed, stream, counter): key = mix(mix(seed ^ 0x243f6a88) ^ stream), then
// out = mix(mix(counter ^ key) + key), where mix is Wellons' "lowbias32" integer hash. For a
// fixed key the map counter -> out is a bijection (every step is invertible), so one stream
// never repeats within 2^32 counters. Uniforms are (out >> 8) / 2^24: exact in f32, in [0, 1).
// Dropout drops an element when (out >> 8) < threshold, threshold = round(p · 2^24).

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

/** Whether dropout keeps element `counter` (drop probability threshold / 2^24). */
fn rng_keep(key: u32, counter: u32, threshold: u32) -> bool {
  return (rng_u32_key(key, counter) >> 8u) >= threshold;
}

// ---- test kernels: out[i] = value at counter offset + i, for i < n -----------------------

struct FillParams { seed: u32, stream: u32, offset: u32, n: u32 }

@group(0) @binding(0) var<uniform> fp: FillParams;
@group(0) @binding(1) var<storage, read_write> out_f: array<f32>;
@group(0) @binding(1) var<storage, read_write> out_u: array<u32>;

override WG: u32 = 256;

fn fill_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn fill_uniform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = fill_index(gid, nwg);
  if (i < fp.n) {
    out_f[i] = rng_uniform(fp.seed, fp.stream, fp.offset + i);
  }
}

@compute @workgroup_size(WG)
fn fill_u32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = fill_index(gid, nwg);
  if (i < fp.n) {
    out_u[i] = rng_u32(fp.seed, fp.stream, fp.offset + i);
  }
}

// ---- dropout: y = x · keep / (1 − p), keep drawn from (key, element index) ----------------
// The same key and index give the same mask in the forward and the backward (dx = dy · mask).

struct DropParams { key: u32, threshold: u32, n: u32, scale: f32 }

@group(0) @binding(0) var<uniform> dp: DropParams;
@group(0) @binding(1) var<storage, read> drop_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> drop_dst: array<f32>;
@group(0) @binding(1) var<storage, read_write> drop_buf: array<f32>;

@compute @workgroup_size(WG)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = fill_index(gid, nwg);
  if (i < dp.n) {
    drop_dst[i] = select(0.0, drop_src[i] * dp.scale, rng_keep(dp.key, i, dp.threshold));
  }
}

@compute @workgroup_size(WG)
fn dropout_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = fill_index(gid, nwg);
  if (i < dp.n) {
    drop_buf[i] = select(0.0, drop_buf[i] * dp.scale, rng_keep(dp.key, i, dp.threshold));
  }
}
