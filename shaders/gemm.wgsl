// General f32 matrix product with transposes and accumulation, for the training engine's
// small and backward products (LoRA A/B, their gradients, the tied LM head backward):
//   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C
// op(A) = A [M,K] (TA=false) or Aᵀ with A stored [K,M] (TA=true); op(B) = B [K,N] (TB=false)
// or Bᵀ with B stored [N,K] (TB=true). All row-major, contiguous. Each invocation computes a
// 4×4 register tile of C walking K one step at a time (scalar loads, any M, N, K); tiles are
// laid out on a 2D grid of invocations so huge outputs fit the 65535-workgroup limit.
// k0..k1 restrict the sum to a slice of K (the host may split a long K into passes, beta = 1).
// Fused dropout (LoRA's input dropout) with the counter RNG, mask element index = the row-major
// index of the masked matrix: DROP = 1 masks op(A) = A [M,K] (index m·K + k), DROP = 2 masks
// B [K,N] (index k·N + n), DROP = 3 masks the product before it is added to C (index m·N + n).
// Kept elements are scaled by dropScale = 1/(1−p). TA/TB must be false for the masked operand.

//!include rng_lib

struct Params {
  M: u32,
  N: u32,
  K: u32,
  tilesN: u32,   // ceil(N / TN)
  gridX: u32,    // invocations along x of the grid = workgroups.x * WG
  tiles: u32,    // ceil(M / TM) * tilesN
  k0: u32,       // first k of this pass (split-K)
  k1: u32,       // one past the last k of this pass
  alpha: f32,
  beta: f32,
  offA: u32,     // element offsets of A, B and C in their buffers
  offB: u32,
  offC: u32,
  dropKey: u32,
  dropThreshold: u32,
  dropScale: f32,
}

override TA: bool = false;
override TB: bool = true;
override WG: u32 = 64;
override DROP: u32 = 0;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn keep(index: u32) -> f32 {
  return select(0.0, p.dropScale, rng_keep(p.dropKey, index, p.dropThreshold));
}

fn a_at(m: u32, k: u32) -> f32 {
  if (TA) {
    return a[p.offA + k * p.M + m];
  }
  let v = a[p.offA + m * p.K + k];
  if (DROP == 1u) {
    return v * keep(m * p.K + k);
  }
  return v;
}

fn b_at(k: u32, n: u32) -> f32 {
  if (TB) {
    return b[p.offB + n * p.K + k];
  }
  let v = b[p.offB + k * p.N + n];
  if (DROP == 2u) {
    return v * keep(k * p.N + n);
  }
  return v;
}

@compute @workgroup_size(WG)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 4u;
  let n0 = (t % p.tilesN) * 4u;
  // Rows/columns past the edge are clamped to the last valid one (their results are not
  // stored), so the inner loop has no bounds checks. The 4×4 tile lives in 16 scalars: CPU
  // WebGPU (SwiftShader) keeps function-scope arrays in memory, named scalars in registers.
  let ma = min(m0, p.M - 1u);
  let mb = min(m0 + 1u, p.M - 1u);
  let mc = min(m0 + 2u, p.M - 1u);
  let md = min(m0 + 3u, p.M - 1u);
  let na = min(n0, p.N - 1u);
  let nb = min(n0 + 1u, p.N - 1u);
  let nc = min(n0 + 2u, p.N - 1u);
  let nd = min(n0 + 3u, p.N - 1u);
  var caa = 0.0;
  var cab = 0.0;
  var cac = 0.0;
  var cad = 0.0;
  var cba = 0.0;
  var cbb = 0.0;
  var cbc = 0.0;
  var cbd = 0.0;
  var cca = 0.0;
  var ccb = 0.0;
  var ccc = 0.0;
  var ccd = 0.0;
  var cda = 0.0;
  var cdb = 0.0;
  var cdc = 0.0;
  var cdd = 0.0;
  for (var k = p.k0; k < p.k1; k++) {
    let xa = a_at(ma, k);
    let xb = a_at(mb, k);
    let xc = a_at(mc, k);
    let xd = a_at(md, k);
    let ya = b_at(k, na);
    let yb = b_at(k, nb);
    let yc = b_at(k, nc);
    let yd = b_at(k, nd);
    caa = fma(xa, ya, caa);
    cab = fma(xa, yb, cab);
    cac = fma(xa, yc, cac);
    cad = fma(xa, yd, cad);
    cba = fma(xb, ya, cba);
    cbb = fma(xb, yb, cbb);
    cbc = fma(xb, yc, cbc);
    cbd = fma(xb, yd, cbd);
    cca = fma(xc, ya, cca);
    ccb = fma(xc, yb, ccb);
    ccc = fma(xc, yc, ccc);
    ccd = fma(xc, yd, ccd);
    cda = fma(xd, ya, cda);
    cdb = fma(xd, yb, cdb);
    cdc = fma(xd, yc, cdc);
    cdd = fma(xd, yd, cdd);
  }
  store(m0 + 0u, n0, vec4<f32>(caa, cab, cac, cad));
  store(m0 + 1u, n0, vec4<f32>(cba, cbb, cbc, cbd));
  store(m0 + 2u, n0, vec4<f32>(cca, ccb, ccc, ccd));
  store(m0 + 3u, n0, vec4<f32>(cda, cdb, cdc, cdd));
}

/** Writes up to 4 outputs of row m from column n0 (skipping those past the edges). */
fn store(m: u32, n0: u32, v: vec4<f32>) {
  if (m >= p.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < p.N) {
      let idx = p.offC + m * p.N + n;
      var r = p.alpha * v[j];
      if (DROP == 3u) {
        r *= keep(m * p.N + n);
      }
      if (p.beta != 0.0) {
        r += p.beta * c[idx];
      }
      c[idx] = r;
    }
  }
}
