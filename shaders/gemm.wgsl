// General f32 matrix product with transposes and accumulation, for the training engine's
// small and backward products (LoRA A/B, their gradients, the tied LM head backward):
//   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C
// op(A) = A [M,K] (TA=false) or Aᵀ with A stored [K,M] (TA=true); op(B) = B [K,N] (TB=false)
// or Bᵀ with B stored [N,K] (TB=true). All row-major, contiguous. Each invocation computes a
// 4×4 register tile of C walking K one step at a time (scalar loads, any M, N, K); tiles are
// laid out on a 2D grid of invocations so huge outputs fit the 65535-workgroup limit.
// k0..k1 restrict the sum to a slice of K (the host may split a long K into passes, beta = 1).
// Split-K (SPLIT > 1, scalar kernel): invocation tile + part·tiles sums its own 1/SPLIT of k0..k1
// and writes the raw partial to c[part·M·N + m·N + n] (c is then a scratch buffer); the entry
// gemm_splitk_reduce adds the SPLIT partials in order and applies alpha, dropout on C and beta.
// GPUs need it for LoRA's weight gradients (M, N ≤ a few hundred, K = every token of the batch):
// a few dozen tiles each walking thousands of k leave the GPU idle and wait on load latency.
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
override SPLIT: u32 = 1;

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
  let g = gid.x + gid.y * p.gridX;
  if (g >= p.tiles * SPLIT) {
    return;
  }
  // Without split-K (SPLIT is an override, so this folds away) the k bounds stay uniform: an
  // H100 ran the unsplit kernel 6× slower with per-invocation bounds.
  var t = g;
  var part = 0u;
  var kb = p.k0;
  var ke = p.k1;
  if (SPLIT > 1u) {
    t = g % p.tiles;
    part = g / p.tiles;
    let chunk = (p.k1 - p.k0 + SPLIT - 1u) / SPLIT;
    kb = p.k0 + part * chunk;
    ke = min(kb + chunk, p.k1);
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
  for (var k = kb; k < ke; k++) {
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
  store(m0 + 0u, n0, vec4<f32>(caa, cab, cac, cad), part);
  store(m0 + 1u, n0, vec4<f32>(cba, cbb, cbc, cbd), part);
  store(m0 + 2u, n0, vec4<f32>(cca, ccb, ccc, ccd), part);
  store(m0 + 3u, n0, vec4<f32>(cda, cdb, cdc, cdd), part);
}

/**
 * Writes up to 4 outputs of row m from column n0 (skipping those past the edges); with split-K,
 * the raw partial sums of `part` into the scratch buffer.
 */
fn store(m: u32, n0: u32, v: vec4<f32>, part: u32) {
  if (m >= p.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < p.N && SPLIT > 1u) {
      c[(part * p.M + m) * p.N + n] = v[j];
    } else if (n < p.N) {
      write_c(m * p.N + n, v[j]);
    }
  }
}

/** The epilogue of element i = m·N + n of C: C[offC + i] = alpha · v · dropout(i) + beta · C[offC + i]. */
fn write_c(i: u32, v: f32) {
  let idx = p.offC + i;
  var r = p.alpha * v;
  if (DROP == 3u) {
    r *= keep(i);
  }
  if (p.beta != 0.0) {
    r += p.beta * c[idx];
  }
  c[idx] = r;
}

/**
 * Split-K's second pass: C[i] = alpha · Σ_part a[part·M·N + i] (parts in order, so runs repeat
 * bit for bit) · dropout(i) + beta · C[i], one invocation per element i = m·N + n of C. The
 * partials come in through binding 1 (a).
 */
@compute @workgroup_size(WG)
fn gemm_splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.gridX;
  let total = p.M * p.N;
  if (i >= total) {
    return;
  }
  var acc = 0.0;
  for (var part = 0u; part < SPLIT; part++) {
    acc += a[part * total + i];
  }
  write_c(i, acc);
}

// ---- gemm_v4: the same product with vec4 loads (CPU adapters) ----------------------------------
// K % 4 == 0, and every operand read as vec4 along its contiguous axis: op(A) = A [M,K] along k
// (offA % 4 == 0), Aᵀ stored [K,M] along m (M % 4 == 0, offA % 4 == 0); op(B) = B [K,N] along n
// (N % 4 == 0, offB % 4 == 0), Bᵀ stored [N,K] along k (offB % 4 == 0). Each invocation computes a
// 4×4 tile of C four k at a time: 8 vec4 loads feed 16 vec4 multiply-adds (the scalar kernel
// needs 32 scalar loads for the same work). Rows/columns past the edge are clamped as above.

@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;

// C rows written as vec4 (N % 4 == 0 and offC % 4 == 0, set by the host).
override C4: bool = false;

/** Writes C[m, n0..n0+3] as one vec4 (C4 shapes: every 4-column group lies inside a row). */
fn store_v4(m: u32, n0: u32, v: vec4<f32>) {
  if (m >= p.M) {
    return;
  }
  let idx = (p.offC + m * p.N + n0) / 4u;
  var r = p.alpha * v;
  if (DROP == 3u) {
    r *= keep4(m * p.N + n0);
  }
  if (p.beta != 0.0) {
    r += p.beta * c4[idx];
  }
  c4[idx] = r;
}

/** store() through the vec4 view of C (any N and offC): element e is c4[e / 4][e % 4]. */
fn store_v4_any(m: u32, n0: u32, v: vec4<f32>) {
  if (m >= p.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < p.N) {
      let e = p.offC + m * p.N + n;
      var r = p.alpha * v[j];
      if (DROP == 3u) {
        r *= keep(m * p.N + n);
      }
      if (p.beta != 0.0) {
        r += p.beta * c4[e / 4u][e % 4u];
      }
      c4[e / 4u][e % 4u] = r;
    }
  }
}

fn keep4(index: u32) -> vec4<f32> {
  return rng_keep_scale4(p.dropKey, index, p.dropThreshold, p.dropScale);
}

// A[m, k..k+3] (TA = false)
fn a_row4(m: u32, k: u32) -> vec4<f32> {
  let v = a4[(p.offA + m * p.K + k) / 4u];
  if (DROP == 1u) {
    return v * keep4(m * p.K + k);
  }
  return v;
}

// B[k, n0..n0+3] (TB = false)
fn b_row4(k: u32, n0: u32) -> vec4<f32> {
  let v = b4[(p.offB + k * p.N + n0) / 4u];
  if (DROP == 2u) {
    return v * keep4(k * p.N + n0);
  }
  return v;
}

// Four vec4 rows: A rows over k (a_quad) or B rows over n (b_quad), for one step of four k.
struct Quad {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
}

// A[m0..m0+3 (clamped), k..k+3] as four rows over k.
fn a_quad(m0: u32, k: u32) -> Quad {
  if (TA) {
    // Aᵀ stored [K, M]: four columns over m (A[m0..m0+3, k + j]), transposed
    let c0 = a4[(p.offA + k * p.M + m0) / 4u];
    let c1 = a4[(p.offA + (k + 1u) * p.M + m0) / 4u];
    let c2 = a4[(p.offA + (k + 2u) * p.M + m0) / 4u];
    let c3 = a4[(p.offA + (k + 3u) * p.M + m0) / 4u];
    return Quad(vec4<f32>(c0.x, c1.x, c2.x, c3.x), vec4<f32>(c0.y, c1.y, c2.y, c3.y),
                vec4<f32>(c0.z, c1.z, c2.z, c3.z), vec4<f32>(c0.w, c1.w, c2.w, c3.w));
  }
  return Quad(a_row4(min(m0, p.M - 1u), k), a_row4(min(m0 + 1u, p.M - 1u), k),
              a_row4(min(m0 + 2u, p.M - 1u), k), a_row4(min(m0 + 3u, p.M - 1u), k));
}

// B[k..k+3, n0..n0+3 (clamped)] as four rows over n.
fn b_quad(k: u32, n0: u32) -> Quad {
  if (TB) {
    // Bᵀ stored [N, K]: four columns over k (B[k..k+3, n]), transposed
    let ba = b4[(p.offB + min(n0, p.N - 1u) * p.K + k) / 4u];
    let bb = b4[(p.offB + min(n0 + 1u, p.N - 1u) * p.K + k) / 4u];
    let bc = b4[(p.offB + min(n0 + 2u, p.N - 1u) * p.K + k) / 4u];
    let bd = b4[(p.offB + min(n0 + 3u, p.N - 1u) * p.K + k) / 4u];
    return Quad(vec4<f32>(ba.x, bb.x, bc.x, bd.x), vec4<f32>(ba.y, bb.y, bc.y, bd.y),
                vec4<f32>(ba.z, bb.z, bc.z, bd.z), vec4<f32>(ba.w, bb.w, bc.w, bd.w));
  }
  return Quad(b_row4(k, n0), b_row4(k + 1u, n0), b_row4(k + 2u, n0), b_row4(k + 3u, n0));
}

// c + x · [y.r0; y.r1; y.r2; y.r3] (one row of A over four k times four rows of B)
fn madd(c: vec4<f32>, x: vec4<f32>, y: Quad) -> vec4<f32> {
  return fma(vec4<f32>(x.w), y.r3, fma(vec4<f32>(x.z), y.r2, fma(vec4<f32>(x.y), y.r1, fma(vec4<f32>(x.x), y.r0, c))));
}

fn store_row(m: u32, n0: u32, v: vec4<f32>) {
  if (C4) {
    store_v4(m, n0, v);
  } else {
    store_v4_any(m, n0, v);
  }
}

// A 4×4 block of C is a Quad too (four rows over n): c + x·y, row i of c gaining row i of x (over
// four k) times the four rows of y.
fn mquad(c: Quad, x: Quad, y: Quad) -> Quad {
  return Quad(madd(c.r0, x.r0, y), madd(c.r1, x.r1, y), madd(c.r2, x.r2, y), madd(c.r3, x.r3, y));
}

fn store_quad(m0: u32, n0: u32, c: Quad) {
  store_row(m0, n0, c.r0);
  store_row(m0 + 1u, n0, c.r1);
  store_row(m0 + 2u, n0, c.r2);
  store_row(m0 + 3u, n0, c.r3);
}

// 4×4 tile of C per invocation (tiles = ceil(M/4) · ceil(N/4)).
@compute @workgroup_size(WG)
fn gemm_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 4u;
  let n0 = (t % p.tilesN) * 4u;
  var c = Quad();
  for (var k = p.k0; k < p.k1; k += 4u) {
    c = mquad(c, a_quad(m0, k), b_quad(k, n0));
  }
  store_quad(m0, n0, c);
}

// 4×8 tile of C per invocation (tiles = ceil(M/4) · ceil(N/8)): each A quad feeds two B quads.
@compute @workgroup_size(WG)
fn gemm_v4w(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 4u;
  let n0 = (t % p.tilesN) * 8u;
  let n1 = n0 + 4u;
  var c = Quad(); // columns n0..n0+3
  var e = Quad(); // columns n1..n1+3
  for (var k = p.k0; k < p.k1; k += 4u) {
    let x = a_quad(m0, k);
    c = mquad(c, x, b_quad(k, n0));
    e = mquad(e, x, b_quad(k, min(n1, p.N - 1u)));
  }
  store_quad(m0, n0, c);
  if (n1 < p.N) {
    store_quad(m0, n1, e);
  }
}

// 8×8 tile of C per invocation (tiles = ceil(M/8) · ceil(N/8)): two A quads × two B quads, so each
// loaded (and dropout-masked) element feeds twice the multiply-adds of the 4×8 tile.
@compute @workgroup_size(WG)
fn gemm_v4x(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 8u;
  let m1 = m0 + 4u;
  let n0 = (t % p.tilesN) * 8u;
  let n1 = n0 + 4u;
  var c = Quad(); // rows m0.., columns n0..
  var e = Quad(); // rows m0.., columns n1..
  var f = Quad(); // rows m1.., columns n0..
  var g = Quad(); // rows m1.., columns n1..
  for (var k = p.k0; k < p.k1; k += 4u) {
    let x = a_quad(m0, k);
    let w = a_quad(min(m1, p.M - 1u), k);
    let y = b_quad(k, n0);
    let z = b_quad(k, min(n1, p.N - 1u));
    c = mquad(c, x, y);
    e = mquad(e, x, z);
    f = mquad(f, w, y);
    g = mquad(g, w, z);
  }
  store_quad(m0, n0, c);
  store_quad(m1, n0, f);
  if (n1 < p.N) {
    store_quad(m0, n1, e);
    store_quad(m1, n1, g);
  }
}

// 4×16 tile of C per invocation (tiles = ceil(M/4) · ceil(N/16)), for products 16 wide (a LoRA
// rank): each A quad, and so each dropout-masked element of A, feeds all sixteen columns.
@compute @workgroup_size(WG)
fn gemm_v4n(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 4u;
  let n0 = (t % p.tilesN) * 16u;
  var c0 = Quad(); // columns n0 + 0..3
  var c1 = Quad(); // columns n0 + 4..7
  var c2 = Quad(); // columns n0 + 8..11
  var c3 = Quad(); // columns n0 + 12..15
  for (var k = p.k0; k < p.k1; k += 4u) {
    let x = a_quad(m0, k);
    c0 = mquad(c0, x, b_quad(k, n0));
    c1 = mquad(c1, x, b_quad(k, min(n0 + 4u, p.N - 1u)));
    c2 = mquad(c2, x, b_quad(k, min(n0 + 8u, p.N - 1u)));
    c3 = mquad(c3, x, b_quad(k, min(n0 + 12u, p.N - 1u)));
  }
  store_quad(m0, n0, c0);
  if (n0 + 4u < p.N) {
    store_quad(m0, n0 + 4u, c1);
  }
  if (n0 + 8u < p.N) {
    store_quad(m0, n0 + 8u, c2);
  }
  if (n0 + 12u < p.N) {
    store_quad(m0, n0 + 12u, c3);
  }
}

// 16×4 tile of C per invocation (tiles = ceil(M/16) · ceil(N/4)), for products 16 tall (a LoRA
// rank): each B quad, and so each dropout-masked element of B, feeds all sixteen rows.
@compute @workgroup_size(WG)
fn gemm_v4m(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * 16u;
  let n0 = (t % p.tilesN) * 4u;
  var c0 = Quad(); // rows m0 + 0..3
  var c1 = Quad(); // rows m0 + 4..7
  var c2 = Quad(); // rows m0 + 8..11
  var c3 = Quad(); // rows m0 + 12..15
  for (var k = p.k0; k < p.k1; k += 4u) {
    let y = b_quad(k, n0);
    c0 = mquad(c0, a_quad(m0, k), y);
    c1 = mquad(c1, a_quad(min(m0 + 4u, p.M - 1u), k), y);
    c2 = mquad(c2, a_quad(min(m0 + 8u, p.M - 1u), k), y);
    c3 = mquad(c3, a_quad(min(m0 + 12u, p.M - 1u), k), y);
  }
  store_quad(m0, n0, c0);
  store_quad(m0 + 4u, n0, c1);
  store_quad(m0 + 8u, n0, c2);
  store_quad(m0 + 12u, n0, c3);
}
