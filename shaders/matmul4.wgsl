// Fused 4-bit (NF4 / FP4, bitsandbytes layout) matrix products, dequantizing W in registers:
//   mm4      y[M,N]  = x[M,K] · Wᵀ (+ bias)     K % 8 == 0 (each W row is whole u32 words)
//   mm4_any  the same for any K (per-element nibble addressing; slower)
//   mv4      y[1,N]  = x[1,K] · Wᵀ (+ bias)     decode (M = 1), K % 8 == 0, K split across KSPLIT threads
//   mm4_bwd  dX[M,K] = dY[M,N] · W               K % 8 == 0
//   mm4_bwd_any  the same for any K
// W [N,K] is packed row-major: flat element f = n*K + k is nibble (f & 7) of u32 word f >> 3 at
// bits 4*((f & 7) ^ 1) (high nibble first within each byte), and its block is f >> bsShift.
// With K % 8 == 0 a word holds 8 consecutive k of one row, and (blocksize being a multiple of 8)
// one block, so the scale is one load per word even when blocks straddle rows (K % bs != 0).
// absmax is plain f32 (DQ = false) or double-quantized (DQ = true: u8 codes, 4 per word, a nested
// f32 absmax per 256 blocks and the 256-entry map), rebuilt per word as
// f32(f32(map[q] * nested) + offset) exactly like quant4.wgsl.
// Tiles (TM × TN outputs per invocation, or TM × 8·TKW for the backward) are override constants,
// so the host picks the tile per adapter; no workgroup memory except mv4's K-split reduction.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  KW: u32,       // K / 8 (fast paths)
  bsShift: u32,  // log2(blocksize)
  tilesX: u32,   // tiles along the fast output axis (N for forward, K words for backward)
  tiles: u32,    // total tiles
  gridX: u32,    // invocations (mv4: workgroups) along x of the (2D) grid
  hasBias: u32,
  zero: u32,     // a runtime 0 that keeps the compiler from fusing the DQ multiply-add
  dqOffset: f32,
  nestedShift: u32, // log2(nested blocksize): 8 for bnb's 256
}

override TM: u32 = 4;    // rows of x (or dY) per invocation, at most 8
override TN: u32 = 4;    // rows of W per invocation (forward), at most 8
override TKW: u32 = 1;   // u32 words of W per row per invocation (backward: 8*TKW columns of dX), at most 2
override WG: u32 = 64;
override KSPLIT: u32 = 1; // mv4: threads sharing one group of TN rows (a power of two <= WG)
override DQ: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> codes: array<vec4<f32>, 4>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> packed: array<u32>;
@group(0) @binding(4) var<storage, read> absmax: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> nested: array<f32>;
@group(0) @binding(8) var<uniform> dqmap: array<vec4<f32>, 64>;

// mm4_any reads x as scalars.
@group(0) @binding(2) var<storage, read> xs: array<f32>;

fn code(c: u32) -> f32 {
  return codes[c >> 2u][c & 3u];
}

// The f32 absmax of block b.
fn scale(b: u32) -> f32 {
  if (DQ) {
    let q = (absmax[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
    let prod = dqmap[q >> 2u][q & 3u] * nested[b >> p.nestedShift];
    return bitcast<f32>(bitcast<u32>(prod) ^ p.zero) + p.dqOffset;
  }
  return bitcast<f32>(absmax[b]);
}

// Codes of the 8 elements of a packed word, in k order (element j at bits 4*(j^1)).
fn codes_lo(w: u32) -> vec4<f32> {
  return vec4<f32>(code((w >> 4u) & 15u), code(w & 15u), code((w >> 12u) & 15u), code((w >> 8u) & 15u));
}
fn codes_hi(w: u32) -> vec4<f32> {
  return vec4<f32>(code((w >> 20u) & 15u), code((w >> 16u) & 15u), code(w >> 28u), code((w >> 24u) & 15u));
}

// The dequantized element at flat index f (any alignment).
fn elem(f: u32) -> f32 {
  let c = (packed[f >> 3u] >> (4u * ((f & 7u) ^ 1u))) & 15u;
  return code(c) * scale(f >> p.bsShift);
}

fn store_y(m0: u32, n0: u32, acc: ptr<function, array<array<f32, 8>, 8>>) {
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
fn mm4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesX) * TM;
  let n0 = (t % p.tilesX) * TN;
  let KW = p.KW;
  var xb: array<u32, 8>;
  var wb: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    xb[i] = min(m0 + i, p.M - 1u) * 2u * KW;
  }
  for (var j = 0u; j < TN; j++) {
    wb[j] = min(n0 + j, p.N - 1u) * KW;
  }
  var acc: array<array<f32, 8>, 8>;
  for (var kw = 0u; kw < KW; kw++) {
    var xa: array<vec4<f32>, 8>;
    var xc: array<vec4<f32>, 8>;
    for (var i = 0u; i < TM; i++) {
      xa[i] = x4[xb[i] + 2u * kw];
      xc[i] = x4[xb[i] + 2u * kw + 1u];
    }
    for (var j = 0u; j < TN; j++) {
      let wi = wb[j] + kw;
      let word = packed[wi];
      let s = scale((wi * 8u) >> p.bsShift);
      let ca = codes_lo(word);
      let cc = codes_hi(word);
      for (var i = 0u; i < TM; i++) {
        acc[i][j] += s * (dot(xa[i], ca) + dot(xc[i], cc));
      }
    }
  }
  store_y(m0, n0, &acc);
}

@compute @workgroup_size(WG)
fn mm4_any(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.gridX;
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tilesX) * TM;
  let n0 = (t % p.tilesX) * TN;
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
      let wv = elem(wb[j] + k);
      for (var i = 0u; i < TM; i++) {
        acc[i][j] += xv[i] * wv;
      }
    }
  }
  store_y(m0, n0, &acc);
}

// ---- decode matvec -------------------------------------------------------------------------

var<workgroup> part: array<f32, 512>; // WG * TN partial sums (WG * TN <= 512)

@compute @workgroup_size(WG)
fn mv4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let teams = WG / KSPLIT;
  let g = wid.x + wid.y * p.gridX;
  let team = lid / KSPLIT;
  let t = lid % KSPLIT;
  let n0 = (g * teams + team) * TN;
  let KW = p.KW;
  var wb: array<u32, 8>;
  for (var j = 0u; j < TN; j++) {
    wb[j] = min(n0 + j, p.N - 1u) * KW;
  }
  var acc: array<f32, 8>;
  for (var kw = t; kw < KW; kw += KSPLIT) {
    let xa = x4[2u * kw];
    let xc = x4[2u * kw + 1u];
    for (var j = 0u; j < TN; j++) {
      let wi = wb[j] + kw;
      let word = packed[wi];
      let s = scale((wi * 8u) >> p.bsShift);
      acc[j] += s * (dot(xa, codes_lo(word)) + dot(xc, codes_hi(word)));
    }
  }
  if (KSPLIT > 1u) {
    for (var j = 0u; j < TN; j++) {
      part[lid * TN + j] = acc[j];
    }
    var s = KSPLIT / 2u;
    loop {
      if (s == 0u) {
        break;
      }
      workgroupBarrier();
      if (t < s) {
        for (var j = 0u; j < TN; j++) {
          part[lid * TN + j] += part[(lid + s) * TN + j];
        }
      }
      s = s / 2u;
    }
    if (t != 0u) {
      return;
    }
    for (var j = 0u; j < TN; j++) {
      acc[j] = part[lid * TN + j];
    }
  }
  for (var j = 0u; j < TN; j++) {
    let n = n0 + j;
    if (n < p.N) {
      var v = acc[j];
      if (p.hasBias != 0u) {
        v += bias[n];
      }
      y[n] = v;
    }
  }
}

// ---- backward: dX = dY · W -----------------------------------------------------------------

@group(0) @binding(0) var<uniform> bp: Params;
@group(0) @binding(1) var<uniform> bcodes: array<vec4<f32>, 4>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> bpacked: array<u32>;
@group(0) @binding(4) var<storage, read> babsmax: array<u32>;
@group(0) @binding(5) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bnested: array<f32>;
@group(0) @binding(7) var<uniform> bdqmap: array<vec4<f32>, 64>;

@group(0) @binding(5) var<storage, read_write> dxs: array<f32>;

fn bcode(c: u32) -> f32 {
  return bcodes[c >> 2u][c & 3u];
}

fn bscale(b: u32) -> f32 {
  if (DQ) {
    let q = (babsmax[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
    let prod = bdqmap[q >> 2u][q & 3u] * bnested[b >> bp.nestedShift];
    return bitcast<f32>(bitcast<u32>(prod) ^ bp.zero) + bp.dqOffset;
  }
  return bitcast<f32>(babsmax[b]);
}

// Each invocation: TM rows of dX × 8·TKW columns (TKW whole words of each W row).
@compute @workgroup_size(WG)
fn mm4_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * bp.gridX;
  if (t >= bp.tiles) {
    return;
  }
  let m0 = (t / bp.tilesX) * TM;
  let kw0 = (t % bp.tilesX) * TKW;
  let KW = bp.KW;
  var db: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    db[i] = min(m0 + i, bp.M - 1u) * bp.N;
  }
  var kws: array<u32, 2>;
  for (var u = 0u; u < TKW; u++) {
    kws[u] = min(kw0 + u, KW - 1u);
  }
  var acc: array<array<vec4<f32>, 4>, 8>;
  for (var n = 0u; n < bp.N; n++) {
    var g: array<f32, 8>;
    for (var i = 0u; i < TM; i++) {
      g[i] = dy[db[i] + n];
    }
    for (var u = 0u; u < TKW; u++) {
      let wi = n * KW + kws[u];
      let word = bpacked[wi];
      let s = bscale((wi * 8u) >> bp.bsShift);
      let ca = s * vec4<f32>(bcode((word >> 4u) & 15u), bcode(word & 15u), bcode((word >> 12u) & 15u), bcode((word >> 8u) & 15u));
      let cc = s * vec4<f32>(bcode((word >> 20u) & 15u), bcode((word >> 16u) & 15u), bcode(word >> 28u), bcode((word >> 24u) & 15u));
      for (var i = 0u; i < TM; i++) {
        acc[i][2u * u] += g[i] * ca;
        acc[i][2u * u + 1u] += g[i] * cc;
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < bp.M) {
      for (var u = 0u; u < TKW; u++) {
        let kw = kw0 + u;
        if (kw < KW) {
          dx4[(m * KW + kw) * 2u] = acc[i][2u * u];
          dx4[(m * KW + kw) * 2u + 1u] = acc[i][2u * u + 1u];
        }
      }
    }
  }
}

fn belem(f: u32) -> f32 {
  let c = (bpacked[f >> 3u] >> (4u * ((f & 7u) ^ 1u))) & 15u;
  return bcode(c) * bscale(f >> bp.bsShift);
}

// Any K: TM rows × 8 consecutive columns per invocation, per-element nibble addressing.
@compute @workgroup_size(WG)
fn mm4_bwd_any(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * bp.gridX;
  if (t >= bp.tiles) {
    return;
  }
  let m0 = (t / bp.tilesX) * TM;
  let k0 = (t % bp.tilesX) * 8u;
  let K = bp.K;
  var db: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    db[i] = min(m0 + i, bp.M - 1u) * bp.N;
  }
  var acc: array<array<f32, 8>, 8>;
  for (var n = 0u; n < bp.N; n++) {
    var g: array<f32, 8>;
    for (var i = 0u; i < TM; i++) {
      g[i] = dy[db[i] + n];
    }
    for (var c = 0u; c < 8u; c++) {
      let k = min(k0 + c, K - 1u);
      let wv = belem(n * K + k);
      for (var i = 0u; i < TM; i++) {
        acc[i][c] += g[i] * wv;
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < bp.M) {
      for (var c = 0u; c < 8u; c++) {
        let k = k0 + c;
        if (k < K) {
          dxs[m * K + k] = acc[i][c];
        }
      }
    }
  }
}
