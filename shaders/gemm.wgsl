// General f32 matrix product with transposes and accumulation, for the training engine's
// small and backward products (LoRA A/B, their gradients, the tied LM head backward):
//   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C
// op(A) = A [M,K] (TA=false) or Aᵀ with A stored [K,M] (TA=true); op(B) = B [K,N] (TB=false)
// or Bᵀ with B stored [N,K] (TB=true). All row-major, contiguous. Each invocation computes a
// TM×TN register tile of C walking K one step at a time (scalar loads, any M, N, K); tiles are
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
override TM: u32 = 4;  // at most 4
override TN: u32 = 4;  // at most 4
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
  let m0 = (t / p.tilesN) * TM;
  let n0 = (t % p.tilesN) * TN;
  // Clamp rows/columns past the edge to the last valid one (their results are not stored),
  // so the inner loop has no bounds checks.
  var ms: array<u32, 4>;
  var ns: array<u32, 4>;
  for (var i = 0u; i < TM; i++) {
    ms[i] = min(m0 + i, p.M - 1u);
  }
  for (var j = 0u; j < TN; j++) {
    ns[j] = min(n0 + j, p.N - 1u);
  }
  var acc: array<array<f32, 4>, 4>;
  for (var k = p.k0; k < p.k1; k++) {
    var av: array<f32, 4>;
    for (var i = 0u; i < TM; i++) {
      av[i] = a_at(ms[i], k);
    }
    for (var j = 0u; j < TN; j++) {
      let bv = b_at(k, ns[j]);
      for (var i = 0u; i < TM; i++) {
        acc[i][j] = fma(av[i], bv, acc[i][j]);
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < p.M) {
      for (var j = 0u; j < TN; j++) {
        let n = n0 + j;
        if (n < p.N) {
          let idx = p.offC + m * p.N + n;
          var v = p.alpha * acc[i][j];
          if (DROP == 3u) {
            v *= keep(m * p.N + n);
          }
          if (p.beta != 0.0) {
            v += p.beta * c[idx];
          }
          c[idx] = v;
        }
      }
    }
  }
}
