// AdamW over one flat f32 page (params, grads, m, v of equal length n), the update of
// torch.optim.AdamW (foreach/single-tensor path, non-capturable), one element per invocation:
//   g     = grad · factor[factor_index]             (clip coefficient from grad-norm, or 1)
//   p     = p · (1 − lr·wd)                         (decoupled weight decay, before the moments)
//   m     = lerp(m, g, 1 − β1)                      (torch's lerp: m + w·(g − m) if |w| < 0.5,
//                                                    else g − (g − m)·(1 − w))
//   v     = v·β2 + ((1 − β2)·g)·g                   (mul_ then addcmul_)
//   denom = √v / √(1 − β2^t) + eps
//   p     = p + (−lr / (1 − β1^t)) · (m / denom)    (addcdiv_)
// The scalars are computed on the host in float64 and passed as f32, like torch's Python scalars.

struct Hyper {
  decay: f32,          // 1 − lr·wd
  w1: f32,             // 1 − β1 (lerp weight)
  beta2: f32,
  w2: f32,             // 1 − β2
  eps: f32,
  neg_step_size: f32,  // −lr / (1 − β1^t)
  bc2_sqrt: f32,       // √(1 − β2^t)
  factor_index: u32,
}

struct Page { n: u32 }

@group(0) @binding(0) var<uniform> h: Hyper;
@group(0) @binding(1) var<uniform> page: Page;
@group(0) @binding(2) var<storage, read> factor: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= page.n) {
    return;
  }
  let grad = g[i] * factor[h.factor_index];
  let param = p[i] * h.decay;
  let m0 = m[i];
  var m1: f32;
  if (abs(h.w1) < 0.5) {
    m1 = m0 + h.w1 * (grad - m0);
  } else {
    m1 = grad - (grad - m0) * (1.0 - h.w1);
  }
  let v1 = v[i] * h.beta2 + (h.w2 * grad) * grad;
  let denom = sqrt(v1) / h.bc2_sqrt + h.eps;
  m[i] = m1;
  v[i] = v1;
  p[i] = param + h.neg_step_size * (m1 / denom);
}
