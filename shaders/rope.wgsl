// Rotary position embedding, HF rotate_half convention (dimension i pairs with i + Dh/2):
//   y[i]      = x[i]·cos − x[i+h]·sin
//   y[i+h]    = x[i+h]·cos + x[i]·sin          (h = Dh/2, angle from position pos[t], pair i)
// The backward is the same rotation by −angle (sign = −1): dx from dy.
//
// x (and y): token t, head hd, dim i at offset + t·rowStride + hd·Dh + i, so q/k inside a fused
// QKV buffer can be rotated in place (rowStride = (Hq + 2·Hkv)·Dh, offset = 0 or Hq·Dh).
// pos: u32 [T] position ids (clamped to maxPos − 1). cs: f32 [maxPos, Dh/2, 2] (cos, sin).
// One invocation per (t, head, pair); flat index over a 2D grid.
//
//   rope_inplace: x rotated in place
//   rope_out:     y = rotate(x), y with its own rowStride/offset (must not alias x)

struct Params {
  T: u32,
  H: u32,
  half: u32,
  maxPos: u32,
  rowStride: u32,
  offset: u32,
  outRowStride: u32,
  outOffset: u32,
  sign: f32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> xrw: array<f32>;
@group(0) @binding(3) var<storage, read> xr: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

struct Pair {
  t: u32,
  hd: u32,
  j: u32,
  c: f32,
  s: f32,
}

fn pair_of(i: u32) -> Pair {
  let j = i % p.half;
  let th = i / p.half;
  let hd = th % p.H;
  let t = th / p.H;
  let ps = min(pos[t], p.maxPos - 1u);
  let cs_ = cs[ps * p.half + j];
  return Pair(t, hd, j, cs_.x, p.sign * cs_.y);
}

@compute @workgroup_size(WG)
fn rope_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.H * p.half) {
    return;
  }
  let q = pair_of(i);
  let a = p.offset + q.t * p.rowStride + q.hd * 2u * p.half + q.j;
  let x1 = xrw[a];
  let x2 = xrw[a + p.half];
  xrw[a] = x1 * q.c - x2 * q.s;
  xrw[a + p.half] = x2 * q.c + x1 * q.s;
}

@compute @workgroup_size(WG)
fn rope_out(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.H * p.half) {
    return;
  }
  let q = pair_of(i);
  let a = p.offset + q.t * p.rowStride + q.hd * 2u * p.half + q.j;
  let b = p.outOffset + q.t * p.outRowStride + q.hd * 2u * p.half + q.j;
  let x1 = xr[a];
  let x2 = xr[a + p.half];
  y[b] = x1 * q.c - x2 * q.s;
  y[b + p.half] = x2 * q.c + x1 * q.s;
}
