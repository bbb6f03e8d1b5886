// Elementwise kernels over n f32 values, one element per invocation. The flat index is
// i = gid.x + gid.y · (num_workgroups.x · WG), so the host can spread more than 65535
// workgroups over a 2D grid (extra invocations in the last row do nothing).
//
//   axpy:    a[i] += alpha · b[i]        (residual add with alpha = 1)
//   axpy4:   the same four elements per invocation (n % 4 == 0; p.n counts vec4s)
//   add_out: out[i] = x[i] + b[i]
//   scale:   a[i] *= alpha
//   fill:    a[i] = alpha

struct Params {
  n: u32,
  alpha: f32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// add_out's bindings (a different entry point: layout 'auto' binds only what it uses).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// axpy4's bindings
@group(0) @binding(1) var<storage, read_write> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) {
    a[i] = a[i] + p.alpha * b[i];
  }
}

@compute @workgroup_size(WG)
fn axpy4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) {
    a4[i] = a4[i] + p.alpha * b4[i];
  }
}

@compute @workgroup_size(WG)
fn add_out(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) {
    out[i] = x[i] + b[i];
  }
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) {
    a[i] = a[i] * p.alpha;
  }
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) {
    a[i] = p.alpha;
  }
}
