// SwiGLU activation of the Llama MLP: h = silu(g) ⊙ u, silu(g) = g·σ(g).
//   swiglu_forward:          h = silu(g)·u
//   swiglu_backward:         dg = dh·u·σ(g)·(1 + g·(1 − σ(g))),  du = dh·silu(g)
//   swiglu_backward_inplace: the same, writing dg over g and du over u (saves two [T, F] buffers)
// g, u, h, dh, dg, du: f32, n = T·F elements (any shape). One invocation per element over a
// 2D grid; the *4 entries (forward, in-place backward) take four elements per invocation as vec4
// when n % 4 == 0 (p.n then counts vec4s). σ is evaluated without overflow: with e = exp(−|g|) ∈ (0, 1], σ = 1/(1+e) for
// g ≥ 0 and e/(1+e) for g < 0 (no inf/inf for large |g|).

struct Params {
  n: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
// forward
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;
// backward (out of place)
@group(0) @binding(1) var<storage, read> dh: array<f32>;
@group(0) @binding(2) var<storage, read> gb: array<f32>;
@group(0) @binding(3) var<storage, read> ub: array<f32>;
@group(0) @binding(4) var<storage, read_write> dg: array<f32>;
@group(0) @binding(5) var<storage, read_write> du: array<f32>;
// backward (in place)
@group(0) @binding(2) var<storage, read_write> g_dg: array<f32>;
@group(0) @binding(3) var<storage, read_write> u_du: array<f32>;
// the vec4 entries
@group(0) @binding(1) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> u4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> h4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dh4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> g_dg4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> u_du4: array<vec4<f32>>;

fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}

fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn swiglu_forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    let x = g4[i];
    h4[i] = x * sigmoid4(x) * u4[i];
  }
}

@compute @workgroup_size(WG)
fn swiglu_backward_inplace4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    let x = g_dg4[i];
    let uv = u_du4[i];
    let s = sigmoid4(x);
    let d = dh4[i];
    g_dg4[i] = d * uv * (s * (1.0 + x * (1.0 - s)));
    u_du4[i] = d * (x * s);
  }
}

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    let x = g[i];
    h[i] = x * sigmoid(x) * u[i];
  }
}

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    let x = gb[i];
    let s = sigmoid(x);
    let d = dh[i];
    dg[i] = d * ub[i] * (s * (1.0 + x * (1.0 - s)));
    du[i] = d * (x * s);
  }
}

@compute @workgroup_size(WG)
fn swiglu_backward_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    let x = g_dg[i];
    let uv = u_du[i];
    let s = sigmoid(x);
    let d = dh[i];
    g_dg[i] = d * uv * (s * (1.0 + x * (1.0 - s)));
    u_du[i] = d * (x * s);
  }
}
