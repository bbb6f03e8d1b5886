// RMSNorm (LlamaRMSNorm / Qwen2RMSNorm). Two shapes: rms_forward / rms_backward run one workgroup
// per row of D with reductions in workgroup memory (GPUs); rms_*_rows run one row per invocation
// (CPU adapters). Row index = wid.x + wid.y · num_workgroups.x (2D grid for many rows).
//
// rms_forward:  rstd[t] = 1/sqrt(mean_d(x[t,d]²) + eps);  y[t,d] = w[d] · (x[t,d] · rstd[t])
// rms_backward: g = w ⊙ dy;  dx[t,d] (=|+=) rstd·(g[d] − x[t,d]·rstd²·mean_d(g ⊙ x))
//               (w is frozen: no dw). With accumulate = 1, dx += (the residual stream's
//               gradient already in dx), else dx =.
// x, y, dy, dx: f32 [T, D]; w: f32 [D]; rstd: f32 [T].

struct Params {
  T: u32,
  D: u32,
  eps: f32,
  accumulate: u32,
}

override WG: u32 = 256;  // a power of two

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// forward
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd_out: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

var<workgroup> red: array<f32, WG>;

// Sum of v over the workgroup (every invocation gets the total). Call from uniform control flow.
fn wg_sum(tid: u32, v: f32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) {
      red[tid] = red[tid] + red[tid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();  // red may be reused right after
  return total;
}

@compute @workgroup_size(WG)
fn rms_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.T) {
    return;
  }
  let base = row * p.D;
  var ss = 0.0;
  for (var d = tid; d < p.D; d += WG) {
    let v = x[base + d];
    ss += v * v;
  }
  let total = wg_sum(tid, ss);
  let r = inverseSqrt(total / f32(p.D) + p.eps);
  for (var d = tid; d < p.D; d += WG) {
    y[base + d] = w[d] * (x[base + d] * r);
  }
  if (tid == 0u) {
    rstd_out[row] = r;
  }
}

@compute @workgroup_size(WG)
fn rms_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.T) {
    return;
  }
  let base = row * p.D;
  var gx = 0.0;
  for (var d = tid; d < p.D; d += WG) {
    gx += w[d] * dy[base + d] * x[base + d];
  }
  let total = wg_sum(tid, gx);
  let r = rstd_in[row];
  let c = r * r * total / f32(p.D);
  for (var d = tid; d < p.D; d += WG) {
    let v = r * (w[d] * dy[base + d] - x[base + d] * c);
    if (p.accumulate != 0u) {
      dx[base + d] = dx[base + d] + v;
    } else {
      dx[base + d] = v;
    }
  }
}

// ---- one row per invocation (CPU adapters: no workgroup memory, no barriers) ------------------
// Row index = global invocation gid.x + gid.y · (num_workgroups.x · WG).

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn rms_forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = row_of(gid, nwg);
  if (row >= p.T) {
    return;
  }
  let base = row * p.D;
  var ss = 0.0;
  for (var d0 = 0u; d0 < p.D; d0 += 256u) {  // summed in blocks of 256 (less rounding error)
    var part = 0.0;
    for (var d = d0; d < min(d0 + 256u, p.D); d++) {
      let v = x[base + d];
      part = fma(v, v, part);
    }
    ss += part;
  }
  let r = inverseSqrt(ss / f32(p.D) + p.eps);
  for (var d = 0u; d < p.D; d++) {
    y[base + d] = w[d] * (x[base + d] * r);
  }
  rstd_out[row] = r;
}

@compute @workgroup_size(WG)
fn rms_backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = row_of(gid, nwg);
  if (row >= p.T) {
    return;
  }
  let base = row * p.D;
  var gx = 0.0;
  for (var d0 = 0u; d0 < p.D; d0 += 256u) {
    var part = 0.0;
    for (var d = d0; d < min(d0 + 256u, p.D); d++) {
      part += w[d] * dy[base + d] * x[base + d];
    }
    gx += part;
  }
  let r = rstd_in[row];
  let c = r * r * gx / f32(p.D);
  let acc = p.accumulate != 0u;
  for (var d = 0u; d < p.D; d++) {
    let v = r * (w[d] * dy[base + d] - x[base + d] * c);
    dx[base + d] = select(0.0, dx[base + d], acc) + v;
  }
}
