// Global L2 norm of many gradient buffers, without a readback inside the step:
//   sumsq_partial (once per buffer, GPUs): each workgroup grid-strides over x[0..n) and writes its
//     sum of squares to dst[out_offset + workgroup index];
//   sumsq_rows (once per buffer, CPU adapters): the same with one invocation per 1024-element chunk;
//   finalize (one workgroup): sums the partials and writes dst[0] = norm = √Σ, dst[1] = the clip
//     coefficient, dst[2] = Σ. The coefficient is torch's clip_grad_norm_:
//     min(1, max_norm / (norm + 1e-6)), evaluated as reciprocal(norm + 1e-6) · max_norm like
//     torch's float / tensor; 1 when max_norm ≤ 0 (clipping off).

const WG: u32 = 256u;

struct PartialParams { n: u32, out_offset: u32 }
struct FinalParams { count: u32, max_norm: f32 }

@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(0) var<uniform> fp: FinalParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> sh: array<f32, WG>;

fn tree_sum(lid: u32) {
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      sh[lid] = sh[lid] + sh[lid + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn sumsq_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  var acc = 0.0;
  let stride = nwg.x * WG;
  for (var i = wid.x * WG + lid.x; i < pp.n; i = i + stride) {
    let a = src[i];
    acc = acc + a * a;
  }
  sh[lid.x] = acc;
  workgroupBarrier();
  tree_sum(lid.x);
  if (lid.x == 0u) {
    dst[pp.out_offset + wid.x] = sh[0];
  }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < fp.count; i = i + WG) {
    acc = acc + src[i];
  }
  sh[lid.x] = acc;
  workgroupBarrier();
  tree_sum(lid.x);
  if (lid.x == 0u) {
    let sumsq = sh[0];
    let norm = sqrt(sumsq);
    var coef = 1.0;
    if (fp.max_norm > 0.0) {
      coef = min(1.0, (1.0 / (norm + 1e-6)) * fp.max_norm);
    }
    dst[0] = norm;
    dst[1] = coef;
    dst[2] = sumsq;
  }
}

// sumsq_rows (CPU adapters: no workgroup memory, no barriers): invocation i sums the squares of
// its own chunk x[i·CHUNK, (i+1)·CHUNK) (in blocks of 256, for rounding) into dst[out_offset + i].
const CHUNK: u32 = 1024u;

@compute @workgroup_size(16)
fn sumsq_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let start = gid.x * CHUNK;
  if (start >= pp.n) {
    return;
  }
  let end = min(start + CHUNK, pp.n);
  var acc = 0.0;
  for (var b = start; b < end; b += 256u) {
    var part = 0.0;
    for (var i = b; i < min(b + 256u, end); i++) {
      let a = src[i];
      part = fma(a, a, part);
    }
    acc += part;
  }
  dst[pp.out_offset + gid.x] = acc;
}
