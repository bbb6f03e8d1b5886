// Token embedding lookup (forward only: the table is frozen under LoRA training).
//   out[t, d] = table[ids[t], d]   for t < T, d < D; an id ≥ V gives a zero row.
// ids: u32 [T]; out: f32 [T, D] row-major. The table is [V, D] row-major in one of:
//   embed_f32:  f32
//   embed_f16:  IEEE half, two per u32 word, element e in word e/2 (low half first, as
//               little-endian bytes of a safetensors F16 tensor)
//   embed_bf16: bfloat16, packed the same way (safetensors BF16)
// One invocation per output element; flat index over a 2D grid (see elementwise.wgsl).

struct Params {
  T: u32,
  D: u32,
  V: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> packed: array<u32>;

// Returns the table element index for output element i, or 0xffffffff for a zero.
fn source(i: u32) -> u32 {
  let t = i / p.D;
  let d = i - t * p.D;
  let id = ids[t];
  if (id >= p.V) {
    return 0xffffffffu;
  }
  return id * p.D + d;
}

@compute @workgroup_size(WG)
fn embed_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.D) {
    return;
  }
  let e = source(i);
  var v = 0.0;
  if (e != 0xffffffffu) {
    v = table[e];
  }
  out[i] = v;
}

@compute @workgroup_size(WG)
fn embed_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.D) {
    return;
  }
  let e = source(i);
  var v = 0.0;
  if (e != 0xffffffffu) {
    let pair = unpack2x16float(packed[e >> 1u]);
    v = select(pair.x, pair.y, (e & 1u) == 1u);
  }
  out[i] = v;
}

@compute @workgroup_size(WG)
fn embed_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.D) {
    return;
  }
  let e = source(i);
  var v = 0.0;
  if (e != 0xffffffffu) {
    let w = packed[e >> 1u];
    v = bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u));
  }
  out[i] = v;
}
