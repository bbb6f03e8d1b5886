// Plain f32 matmul y[M,N] = x[M,K] · Wᵀ (+ bias), W f32 [N,K] row-major (the nn.Linear layout),
// register-tiled exactly like the fused 4-bit kernel in matmul4.wgsl (the benchmark compares
// the two): each invocation computes a TM×TN tile of y, walking K eight values at a time
// (2 vec4 of x per tile row, 2 vec4 of W per tile column), no workgroup memory.
// Any M, N; `mm_f32` needs K % 4 == 0 (rows start 16-byte aligned), `mm_f32_any` takes any K.
// Also a vec4 copy kernel (the bandwidth baseline).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  tilesN: u32,  // ceil(N / TN)
  gridX: u32,   // invocations along x of the (2D) grid = workgroups.x * WG
  tiles: u32,   // ceil(M / TM) * tilesN
  hasBias: u32,
  pad: u32,
}

override TM: u32 = 4;   // tile rows (of x), at most 8
override TN: u32 = 4;   // tile columns (rows of W), at most 8
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> ws: array<f32>;

fn store_tile(m0: u32, n0: u32, acc: ptr<function, array<array<f32, 8>, 8>>) {
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < p.M) {
      for (var j = 0u; j < TN; j++) {
        let n = n0 + j;
        if (n < p.N) {
          var v = (*acc)[i][j];
          if (p.hasBias != 0u) {
            v += bias[n];
          }
          y[m * p.N + n] = v;
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn mm_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * TM;
  let n0 = (t % p.tilesN) * TN;
  let K4 = p.K / 4u;
  var xb: array<u32, 8>;
  var wb: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    xb[i] = min(m0 + i, p.M - 1u) * K4;
  }
  for (var j = 0u; j < TN; j++) {
    wb[j] = min(n0 + j, p.N - 1u) * K4;
  }
  var acc: array<array<f32, 8>, 8>;
  var k = 0u;
  for (; k + 1u < K4; k += 2u) {
    var xa: array<vec4<f32>, 8>;
    var xc: array<vec4<f32>, 8>;
    for (var i = 0u; i < TM; i++) {
      xa[i] = x4[xb[i] + k];
      xc[i] = x4[xb[i] + k + 1u];
    }
    for (var j = 0u; j < TN; j++) {
      let wa = w4[wb[j] + k];
      let wc = w4[wb[j] + k + 1u];
      for (var i = 0u; i < TM; i++) {
        acc[i][j] += dot(xa[i], wa) + dot(xc[i], wc);
      }
    }
  }
  if (k < K4) {
    for (var j = 0u; j < TN; j++) {
      let wa = w4[wb[j] + k];
      for (var i = 0u; i < TM; i++) {
        acc[i][j] += dot(x4[xb[i] + k], wa);
      }
    }
  }
  store_tile(m0, n0, &acc);
}

// Any K (scalar loads).
@compute @workgroup_size(WG)
fn mm_f32_any(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesN) * TM;
  let n0 = (t % p.tilesN) * TN;
  var xb: array<u32, 8>;
  var wb: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    xb[i] = min(m0 + i, p.M - 1u) * p.K;
  }
  for (var j = 0u; j < TN; j++) {
    wb[j] = min(n0 + j, p.N - 1u) * p.K;
  }
  var acc: array<array<f32, 8>, 8>;
  for (var k = 0u; k < p.K; k++) {
    var xv: array<f32, 8>;
    for (var i = 0u; i < TM; i++) {
      xv[i] = xs[xb[i] + k];
    }
    for (var j = 0u; j < TN; j++) {
      let wv = ws[wb[j] + k];
      for (var i = 0u; i < TM; i++) {
        acc[i][j] += xv[i] * wv;
      }
    }
  }
  store_tile(m0, n0, &acc);
}

// ---- copy (bandwidth baseline) -------------------------------------------------------------

struct CopyParams {
  n4: u32,     // vec4 count
  gridX: u32,  // invocations along x
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> csrc: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> cdst: array<vec4<f32>>;

// Each invocation copies 2 vec4 (32 bytes), like the dequantizer writes per packed word.
@compute @workgroup_size(WG)
fn copy_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * cp.gridX);
  if (i < cp.n4) {
    cdst[i] = csrc[i];
  }
  if (i + 1u < cp.n4) {
    cdst[i + 1u] = csrc[i + 1u];
  }
}
