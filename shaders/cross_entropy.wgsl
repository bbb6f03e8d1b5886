// Fused softmax cross-entropy over logits [T, V] (one workgroup per row, reductions in
// workgroup memory; numerically stable: per-thread online max/sum-exp, combined pairwise).
// labels: i32, row r of this call reads labels[rowOffset + r] and writes losses[rowOffset + r]
// (so the logits can be produced and consumed in chunks of rows). A label counts when
// 0 ≤ label < V; −100 (and anything else out of range) is ignored: loss 0, dlogits 0.
//
//   ce_forward:         losses[t] = lse(logits[t]) − logits[t, label]; logits untouched
//   ce_fwd_bwd:         the same, and logits[t, :] := (softmax − onehot)·scale in place
//                       (scale = gradScale/count from the host)
//   ce_fwd_bwd_stats:   the same with scale = gradScale · stats[3] (1/count from ce_count)
//   ce_count:           one workgroup: stats = [0, 0, count, count > 0 ? 1/count : 0] over T labels
//   ce_reduce:          one workgroup: stats = [mean, sum, count, 1/count] over T losses/labels
//                       (mean 0 when count is 0)
// stats: f32 [4]. Row index = wid.x + wid.y · num_workgroups.x (2D grid for many rows).

struct Params {
  T: u32,          // rows in this call (per-row kernels) or total labels (count / reduce)
  V: u32,
  rowOffset: u32,
  scale: f32,      // ce_fwd_bwd: gradScale / count;  ce_fwd_bwd_stats: gradScale
}

override WG: u32 = 256;  // a power of two

const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
// per-row kernels
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits_rw: array<f32>;
@group(0) @binding(4) var<storage, read> stats_in: array<f32>;
// ce_count
@group(0) @binding(2) var<storage, read_write> stats_count: array<f32>;
// ce_reduce
@group(0) @binding(2) var<storage, read> losses_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats_out: array<f32>;

var<workgroup> rm: array<f32, WG>;
var<workgroup> rs: array<f32, WG>;
var<workgroup> slabel: i32;

fn valid_label(lab: i32) -> bool {
  return lab >= 0 && lab < i32(p.V);
}

// Online update of a running (max m, sum s of exp(x − m)) with x.
fn online(ms: vec2<f32>, x: f32) -> vec2<f32> {
  if (x > ms.x) {
    return vec2<f32>(x, ms.y * exp(ms.x - x) + 1.0);
  }
  return vec2<f32>(ms.x, ms.y + exp(x - ms.x));
}

// Combines every invocation's (m, s) into the row's (max, Σ exp(x − max)). Uniform control flow
// only. Callers use x − max (exact for the logits near the max) and log/divide by the sum,
// rather than x − lse, whose f32 rounding at large |lse| would cost accuracy.
fn wg_maxsum(tid: u32, ms: vec2<f32>) -> vec2<f32> {
  rm[tid] = ms.x;
  rs[tid] = ms.y;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (tid < st) {
      let m1 = rm[tid];
      let m2 = rm[tid + st];
      let mm = max(m1, m2);
      rs[tid] = rs[tid] * exp(m1 - mm) + rs[tid + st] * exp(m2 - mm);
      rm[tid] = mm;
    }
    workgroupBarrier();
  }
  let r = vec2<f32>(rm[0], rs[0]);
  workgroupBarrier();
  return r;
}

// Sums v over the workgroup (uses rs).
fn wg_sum(tid: u32, v: f32) -> f32 {
  rs[tid] = v;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (tid < st) {
      rs[tid] = rs[tid] + rs[tid + st];
    }
    workgroupBarrier();
  }
  let total = rs[0];
  workgroupBarrier();
  return total;
}

// The row's label, uniform across the workgroup.
fn row_label(tid: u32, row: u32) -> i32 {
  if (tid == 0u) {
    slabel = labels[p.rowOffset + row];
  }
  return workgroupUniformLoad(&slabel);
}

@compute @workgroup_size(WG)
fn ce_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.T) {
    return;
  }
  let lab = row_label(tid, row);
  if (!valid_label(lab)) {
    if (tid == 0u) {
      losses[p.rowOffset + row] = 0.0;
    }
    return;
  }
  let base = row * p.V;
  var ms = vec2<f32>(NEG, 0.0);
  for (var j = tid; j < p.V; j += WG) {
    ms = online(ms, logits[base + j]);
  }
  let tot = wg_maxsum(tid, ms);
  if (tid == 0u) {
    losses[p.rowOffset + row] = (tot.x - logits[base + u32(lab)]) + log(tot.y);
  }
}

// Loss and dlogits for one row, in place over logits_rw.
fn fwd_bwd_row(tid: u32, row: u32, scale: f32) {
  let lab = row_label(tid, row);
  let base = row * p.V;
  if (!valid_label(lab)) {
    for (var j = tid; j < p.V; j += WG) {
      logits_rw[base + j] = 0.0;
    }
    if (tid == 0u) {
      losses[p.rowOffset + row] = 0.0;
    }
    return;
  }
  // Every invocation reads the target logit before the barriers in wg_maxsum, so none can
  // overwrite it first.
  let tgt = logits_rw[base + u32(lab)];
  var ms = vec2<f32>(NEG, 0.0);
  for (var j = tid; j < p.V; j += WG) {
    ms = online(ms, logits_rw[base + j]);
  }
  let tot = wg_maxsum(tid, ms);
  let inv = 1.0 / tot.y;
  for (var j = tid; j < p.V; j += WG) {
    let pr = exp(logits_rw[base + j] - tot.x) * inv;
    logits_rw[base + j] = (pr - select(0.0, 1.0, j == u32(lab))) * scale;
  }
  if (tid == 0u) {
    losses[p.rowOffset + row] = (tot.x - tgt) + log(tot.y);
  }
}

@compute @workgroup_size(WG)
fn ce_fwd_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.T) {
    return;
  }
  fwd_bwd_row(tid, row, p.scale);
}

@compute @workgroup_size(WG)
fn ce_fwd_bwd_stats(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.T) {
    return;
  }
  fwd_bwd_row(tid, row, p.scale * stats_in[3]);
}

@compute @workgroup_size(WG)
fn ce_count(@builtin(local_invocation_index) tid: u32) {
  var c = 0.0;
  for (var t = tid; t < p.T; t += WG) {
    c += select(0.0, 1.0, valid_label(labels[t]));
  }
  let count = wg_sum(tid, c);
  if (tid == 0u) {
    stats_count[0] = 0.0;
    stats_count[1] = 0.0;
    stats_count[2] = count;
    stats_count[3] = select(0.0, 1.0 / count, count > 0.0);
  }
}

@compute @workgroup_size(WG)
fn ce_reduce(@builtin(local_invocation_index) tid: u32) {
  var c = 0.0;
  var s = 0.0;
  for (var t = tid; t < p.T; t += WG) {
    if (valid_label(labels[t])) {
      c += 1.0;
      s += losses_in[t];
    }
  }
  let count = wg_sum(tid, c);
  let sum = wg_sum(tid, s);
  if (tid == 0u) {
    stats_out[0] = select(0.0, sum / count, count > 0.0);
    stats_out[1] = sum;
    stats_out[2] = count;
    stats_out[3] = select(0.0, 1.0 / count, count > 0.0);
  }
}

// ---- one row per invocation (CPU adapters: no workgroup memory, no barriers) ------------------
// Three passes over the row (max; Σ exp(x − max); write), no data-dependent branches: CPU
// implementations run both sides of a branch that differs across lanes. Row index = global
// invocation gid.x + gid.y · (num_workgroups.x · WG).

fn row_max(base: u32) -> f32 {
  var m = NEG;
  for (var j = 0u; j < p.V; j++) {
    m = max(m, logits_rw[base + j]);
  }
  return m;
}

// Summed in blocks of 256 (error ~ (256 + V/256)·ulp rather than V·ulp for a running sum).
fn row_sumexp(base: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var j0 = 0u; j0 < p.V; j0 += 256u) {
    var part = 0.0;
    let j1 = min(j0 + 256u, p.V);
    for (var j = j0; j < j1; j++) {
      part += exp(logits_rw[base + j] - m);
    }
    s += part;
  }
  return s;
}

// Loss and (when scale is given) dlogits of one row; ignored rows get loss 0 (and dlogits 0).
fn row_loss(row: u32, backward: bool, scale: f32) {
  let lab = labels[p.rowOffset + row];
  let base = row * p.V;
  let ok = valid_label(lab);
  let li = select(0u, u32(lab), ok);
  let tgt = logits_rw[base + li];
  let m = row_max(base);
  let s = row_sumexp(base, m);
  losses[p.rowOffset + row] = select(0.0, (m - tgt) + log(s), ok);
  if (backward) {
    let k = select(0.0, scale / s, ok);
    let hot = select(0.0, scale, ok);
    for (var j = 0u; j < p.V; j++) {
      logits_rw[base + j] = exp(logits_rw[base + j] - m) * k - select(0.0, hot, j == li);
    }
  }
}

@compute @workgroup_size(WG)
fn ce_forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row < p.T) {
    row_loss(row, false, 0.0);
  }
}

@compute @workgroup_size(WG)
fn ce_fwd_bwd_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row < p.T) {
    row_loss(row, true, p.scale);
  }
}

@compute @workgroup_size(WG)
fn ce_fwd_bwd_stats_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row < p.T) {
    row_loss(row, true, p.scale * stats_in[3]);
  }
}
