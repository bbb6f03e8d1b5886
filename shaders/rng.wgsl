// Random-number fill kernels over the counter RNG of rng_lib.wgsl (tests compare them with
// src/train/rng.ts; dropout itself is fused into gemm.wgsl).

//!include rng_lib

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
