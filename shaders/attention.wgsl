// Causal grouped-query attention with segment masks, flash-attention style (no [S, S] matrix in
// global memory): tiles of queries and keys in workgroup memory, online softmax, the backward
// recomputes probabilities from q, k and the saved log-sum-exp.
//
// Layouts (f32 row-major, T = B·S tokens, token t = b·S + s):
//   q, o, dout, dq  [T, Hq, Dh]      k, v, dk, dv  [T, Hkv, Dh]      seg  u32 [T]
//   lse  [T, Hq]  log Σ exp(score) per (token, head), 0 for a query that attends nothing
//   ld   [T, Hq, 2]  (lse, D = Σ_d dout·o) per (token, head), built by attn_bwd_prep
// Query head h reads kv head h / (Hq/Hkv). Query s of sequence b attends key j of the same
// sequence iff j ≤ s, seg[j] = seg[s] and seg[s] ≠ 0 (segment 0 = padding: a padded query
// outputs 0, a padded key is never attended). Scores are (q·k)·scale, softmax in f32.
//
// Kernels (workgroup index gi = wid.x + wid.y·num_workgroups.x, ≥ nGroups does nothing):
//   attn_fwd       one workgroup per (b, query head, query tile of BR rows); BR·NC threads,
//                  NC threads per query row. Writes o and lse.
//   attn_bwd_prep  one invocation per (t, h): ld = (lse, Σ dout·o).
//   attn_bwd_dq    one workgroup per (b, query head, query tile): dq.
//   attn_bwd_dkdv  one workgroup per (b, kv head, key tile of BC keys); loops over the Hq/Hkv
//                  query heads of its kv head, so dk/dv are summed without atomics: dk, dv.
//   attn_decode(_lens)  one workgroup per (b, query head): one query (the newest token)
//                  against a KV cache [B, maxS, Hkv, Dh] of length L (or lens[b]).
// Each tile kernel first finds the range of keys (queries) its tile can touch, from the
// segment ids, and only loops over that range: with packed examples the work is about the
// sum of squared example lengths, and padding costs nothing.
//
// Tile sizes are pipeline constants picked by the host to fit the device's workgroup memory:
// BR (query rows), BC (keys), NC (threads per row), DH (head dim). Thread (row, c) keeps the
// output columns c, c + NC, ... (DPT = DH/NC of them, at most MAXDPT) in registers. Rows in
// workgroup memory that are read across threads by row are padded to DH + 1 floats.

struct Params {
  S: u32,
  Hq: u32,
  Hkv: u32,
  nTiles: u32,   // query tiles (fwd, dq) or key tiles (dkdv) per (b, head)
  nGroups: u32,  // workgroups that do work
  scale: f32,
}

struct PrepParams {
  n: u32,        // T·Hq
}

struct DecodeParams {
  B: u32,
  maxS: u32,
  Hq: u32,
  Hkv: u32,
  L: u32,
  scale: f32,
}

override BR: u32 = 16;
override BC: u32 = 16;
override NC: u32 = 8;
override DH: u32 = 64;
override DPT: u32 = (DH + NC - 1u) / NC;
override DWG: u32 = 128;  // decode workgroup size: a power of two ≥ DH

const MAXDPT: u32 = 32u;
const NEG: f32 = -3.0e38;  // "no score" (finite, so exp(NEG − m) = 0 without inf − inf)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> seg: array<u32>;
// forward outputs
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
// backward
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> ld: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
// attn_bwd_prep
@group(0) @binding(0) var<uniform> pp: PrepParams;
@group(0) @binding(1) var<storage, read> o_in: array<f32>;
@group(0) @binding(2) var<storage, read> do_in: array<f32>;
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> ld_out: array<vec2<f32>>;
// decode: q [B, Hq, Dh] at 1, cache k/v [B, maxS, Hkv, Dh] at 2/3
@group(0) @binding(0) var<uniform> pd: DecodeParams;
@group(0) @binding(4) var<storage, read_write> od: array<f32>;
@group(0) @binding(5) var<storage, read> lens: array<u32>;

var<workgroup> sq: array<f32, BR * (DH + 1u)>;   // query tile (rows padded)
var<workgroup> sdo: array<f32, BR * (DH + 1u)>;  // dout tile
var<workgroup> sk: array<f32, BC * (DH + 1u)>;   // key tile
var<workgroup> sv: array<f32, BC * (DH + 1u)>;   // value tile
var<workgroup> sp: array<f32, BR * BC>;          // scores / probabilities / dS
var<workgroup> sds: array<f32, BR * BC>;         // probabilities (fwd) / dS (dkdv)
var<workgroup> sqseg: array<u32, BR>;            // segment of each tile query (0 = none)
var<workgroup> sks: array<u32, BC>;              // segment of each tile key (0 = none)
var<workgroup> sld: array<vec2<f32>, BR>;        // (lse, D) of each tile query (dkdv)
var<workgroup> wlo: atomic<u32>;
var<workgroup> whi: atomic<u32>;
var<workgroup> ulo: u32;
var<workgroup> uhi: u32;

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// For the query tile [q0, q0 + BR) of the sequence starting at token `base`: fills sqseg and
// returns the key range [lo, hi) that any of its queries may attend (lo ≥ hi: none).
fn query_tile_keys(tid: u32, nthr: u32, base: u32, q0: u32) -> vec2<u32> {
  if (tid == 0u) {
    atomicStore(&wlo, 0xffffffffu);
    atomicStore(&whi, 0u);
  }
  workgroupBarrier();
  if (tid < BR) {
    let s = q0 + tid;
    var sg = 0u;
    if (s < p.S) {
      sg = seg[base + s];
    }
    sqseg[tid] = sg;
    if (sg != 0u) {
      atomicMax(&whi, s + 1u);
    }
  }
  workgroupBarrier();
  let hi = atomicLoad(&whi);
  // The first key any tile query attends: each invocation scans its keys upwards and stops at
  // its first hit (so the min over invocations is the global first hit).
  for (var j = tid; j < hi; j += nthr) {
    let ks = seg[base + j];
    var hit = false;
    if (ks != 0u) {
      for (var rr = 0u; rr < BR; rr++) {
        if (sqseg[rr] == ks && j <= q0 + rr) {
          hit = true;
          break;
        }
      }
    }
    if (hit) {
      atomicMin(&wlo, j);
      break;
    }
  }
  workgroupBarrier();
  if (tid == 0u) {
    ulo = atomicLoad(&wlo);
    uhi = hi;
  }
  let lo = workgroupUniformLoad(&ulo);
  return vec2<u32>(lo, workgroupUniformLoad(&uhi));
}

// For the key tile [k0, k0 + BC): fills sks and returns the query range [lo, hi) that may
// attend any of its keys.
fn key_tile_queries(tid: u32, nthr: u32, base: u32, k0: u32) -> vec2<u32> {
  if (tid == 0u) {
    atomicStore(&wlo, 0xffffffffu);
    atomicStore(&whi, 0u);
  }
  workgroupBarrier();
  if (tid < BC) {
    let key = k0 + tid;
    var sg = 0u;
    if (key < p.S) {
      sg = seg[base + key];
    }
    sks[tid] = sg;
    if (sg != 0u) {
      atomicMin(&wlo, key);
    }
  }
  workgroupBarrier();
  let lo = atomicLoad(&wlo);
  if (lo < p.S) {
    // The last query that attends a tile key: scan downwards from the sequence end.
    let n = p.S - lo;
    for (var i = tid; i < n; i += nthr) {
      let qi = p.S - 1u - i;
      let qs = seg[base + qi];
      var hit = false;
      if (qs != 0u) {
        for (var jj = 0u; jj < BC; jj++) {
          if (sks[jj] == qs && k0 + jj <= qi) {
            hit = true;
            break;
          }
        }
      }
      if (hit) {
        atomicMax(&whi, qi + 1u);
        break;
      }
    }
  }
  workgroupBarrier();
  if (tid == 0u) {
    ulo = lo;
    uhi = atomicLoad(&whi);
  }
  let a = workgroupUniformLoad(&ulo);
  return vec2<u32>(a, workgroupUniformLoad(&uhi));
}

// Loads keys [k0, k0 + BC) ∩ [0, hi) of kv head kvh into sk/sv (zeros past hi) and their
// segment ids into sks (0 past hi).
fn load_kv_tile(tid: u32, nthr: u32, base: u32, kvh: u32, k0: u32, hi: u32) {
  for (var e = tid; e < BC * DH; e += nthr) {
    let jj = e / DH;
    let d = e - jj * DH;
    let key = k0 + jj;
    var kv = 0.0;
    var vv = 0.0;
    if (key < hi) {
      let off = ((base + key) * p.Hkv + kvh) * DH + d;
      kv = k[off];
      vv = v[off];
    }
    sk[jj * (DH + 1u) + d] = kv;
    sv[jj * (DH + 1u) + d] = vv;
  }
  if (tid < BC) {
    let key = k0 + tid;
    var sg = 0u;
    if (key < hi) {
      sg = seg[base + key];
    }
    sks[tid] = sg;
  }
}

// Loads query rows [q0, q0 + BR) ∩ [0, hi) of head h into sq (zeros past hi).
fn load_q_tile(tid: u32, nthr: u32, base: u32, h: u32, q0: u32, hi: u32) {
  for (var e = tid; e < BR * DH; e += nthr) {
    let rr = e / DH;
    let d = e - rr * DH;
    let s = q0 + rr;
    var x = 0.0;
    if (s < hi) {
      x = q[((base + s) * p.Hq + h) * DH + d];
    }
    sq[rr * (DH + 1u) + d] = x;
  }
}

// The same for dout into sdo.
fn load_do_tile(tid: u32, nthr: u32, base: u32, h: u32, q0: u32, hi: u32) {
  for (var e = tid; e < BR * DH; e += nthr) {
    let rr = e / DH;
    let d = e - rr * DH;
    let s = q0 + rr;
    var x = 0.0;
    if (s < hi) {
      x = dout[((base + s) * p.Hq + h) * DH + d];
    }
    sdo[rr * (DH + 1u) + d] = x;
  }
}

fn dot_q_k(r: u32, jj: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < DH; d++) {
    s += sq[r * (DH + 1u) + d] * sk[jj * (DH + 1u) + d];
  }
  return s;
}

fn dot_do_v(r: u32, jj: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < DH; d++) {
    s += sdo[r * (DH + 1u) + d] * sv[jj * (DH + 1u) + d];
  }
  return s;
}

@compute @workgroup_size(BR * NC)
fn attn_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let gi = group_index(wid, nwg);
  if (gi >= p.nGroups) {
    return;
  }
  let nthr = BR * NC;
  let qt = p.nTiles - 1u - gi % p.nTiles;  // longest (last) tiles first
  let bh = gi / p.nTiles;
  let h = bh % p.Hq;
  let b = bh / p.Hq;
  let kvh = h / (p.Hq / p.Hkv);
  let base = b * p.S;
  let q0 = qt * BR;
  let r = tid / NC;
  let c = tid % NC;

  let kr = query_tile_keys(tid, nthr, base, q0);
  load_q_tile(tid, nthr, base, h, q0, p.S);
  let myseg = sqseg[r];
  let mypos = q0 + r;

  var m = NEG;
  var l = 0.0;
  var acc: array<f32, MAXDPT>;
  for (var k0 = kr.x; k0 < kr.y; k0 += BC) {
    workgroupBarrier();
    load_kv_tile(tid, nthr, base, kvh, k0, kr.y);
    workgroupBarrier();
    for (var jj = c; jj < BC; jj += NC) {
      var sc = NEG;
      if (myseg != 0u && sks[jj] == myseg && k0 + jj <= mypos) {
        sc = dot_q_k(r, jj) * p.scale;
      }
      sp[r * BC + jj] = sc;
    }
    workgroupBarrier();
    // Online softmax: every invocation of a row finds the row max, exponentiates its own keys
    // into sds, and after a barrier all of them accumulate the row's P·V.
    var mx = NEG;
    for (var jj = 0u; jj < BC; jj++) {
      mx = max(mx, sp[r * BC + jj]);
    }
    let mnew = max(m, mx);
    for (var jj = c; jj < BC; jj += NC) {
      let sc = sp[r * BC + jj];
      sds[r * BC + jj] = select(0.0, exp(sc - mnew), sc > NEG);
    }
    workgroupBarrier();
    if (mx > NEG) {
      let corr = exp(m - mnew);
      l = l * corr;
      for (var i = 0u; i < DPT; i++) {
        acc[i] = acc[i] * corr;
      }
      for (var jj = 0u; jj < BC; jj++) {
        let pr = sds[r * BC + jj];
        l += pr;
        for (var i = 0u; i < DPT; i++) {
          let d = c + i * NC;
          if (d < DH) {
            acc[i] += pr * sv[jj * (DH + 1u) + d];
          }
        }
      }
      m = mnew;
    }
  }
  if (mypos < p.S) {
    let t = base + mypos;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var i = 0u; i < DPT; i++) {
      let d = c + i * NC;
      if (d < DH) {
        o[(t * p.Hq + h) * DH + d] = acc[i] * inv;
      }
    }
    if (c == 0u) {
      lse[t * p.Hq + h] = select(0.0, m + log(l), l > 0.0);
    }
  }
}

@compute @workgroup_size(64)
fn attn_bwd_prep(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= pp.n) {
    return;
  }
  var s = 0.0;
  for (var d = 0u; d < DH; d++) {
    s += o_in[i * DH + d] * do_in[i * DH + d];
  }
  ld_out[i] = vec2<f32>(lse_in[i], s);
}

@compute @workgroup_size(BR * NC)
fn attn_bwd_dq(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let gi = group_index(wid, nwg);
  if (gi >= p.nGroups) {
    return;
  }
  let nthr = BR * NC;
  let qt = p.nTiles - 1u - gi % p.nTiles;
  let bh = gi / p.nTiles;
  let h = bh % p.Hq;
  let b = bh / p.Hq;
  let kvh = h / (p.Hq / p.Hkv);
  let base = b * p.S;
  let q0 = qt * BR;
  let r = tid / NC;
  let c = tid % NC;

  let kr = query_tile_keys(tid, nthr, base, q0);
  load_q_tile(tid, nthr, base, h, q0, p.S);
  load_do_tile(tid, nthr, base, h, q0, p.S);
  let myseg = sqseg[r];
  let mypos = q0 + r;
  var mylse = 0.0;
  var myD = 0.0;
  if (mypos < p.S) {
    let x = ld[(base + mypos) * p.Hq + h];
    mylse = x.x;
    myD = x.y;
  }

  var acc: array<f32, MAXDPT>;
  for (var k0 = kr.x; k0 < kr.y; k0 += BC) {
    workgroupBarrier();
    load_kv_tile(tid, nthr, base, kvh, k0, kr.y);
    workgroupBarrier();
    for (var jj = c; jj < BC; jj += NC) {
      var ds = 0.0;
      if (myseg != 0u && sks[jj] == myseg && k0 + jj <= mypos) {
        let pr = exp(dot_q_k(r, jj) * p.scale - mylse);
        ds = pr * (dot_do_v(r, jj) - myD);
      }
      sp[r * BC + jj] = ds;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < BC; jj++) {
      let ds = sp[r * BC + jj];
      for (var i = 0u; i < DPT; i++) {
        let d = c + i * NC;
        if (d < DH) {
          acc[i] += ds * sk[jj * (DH + 1u) + d];
        }
      }
    }
  }
  if (mypos < p.S) {
    let t = base + mypos;
    for (var i = 0u; i < DPT; i++) {
      let d = c + i * NC;
      if (d < DH) {
        dq[(t * p.Hq + h) * DH + d] = acc[i] * p.scale;
      }
    }
  }
}

@compute @workgroup_size(BC * NC)
fn attn_bwd_dkdv(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let gi = group_index(wid, nwg);
  if (gi >= p.nGroups) {
    return;
  }
  let nthr = BC * NC;
  let kt = gi % p.nTiles;
  let bh = gi / p.nTiles;
  let kvh = bh % p.Hkv;
  let b = bh / p.Hkv;
  let G = p.Hq / p.Hkv;
  let base = b * p.S;
  let k0 = kt * BC;
  let j = tid / NC;
  let c = tid % NC;

  let qr = key_tile_queries(tid, nthr, base, k0);
  // This tile's keys and values (zeros past the sequence end).
  for (var e = tid; e < BC * DH; e += nthr) {
    let jj = e / DH;
    let d = e - jj * DH;
    let key = k0 + jj;
    var kv = 0.0;
    var vv = 0.0;
    if (key < p.S) {
      let off = ((base + key) * p.Hkv + kvh) * DH + d;
      kv = k[off];
      vv = v[off];
    }
    sk[jj * (DH + 1u) + d] = kv;
    sv[jj * (DH + 1u) + d] = vv;
  }
  let mykey = k0 + j;
  let myks = sks[j];

  var dka: array<f32, MAXDPT>;
  var dva: array<f32, MAXDPT>;
  for (var g = 0u; g < G; g++) {
    let h = kvh * G + g;
    for (var q0 = qr.x; q0 < qr.y; q0 += BR) {
      workgroupBarrier();
      load_q_tile(tid, nthr, base, h, q0, qr.y);
      load_do_tile(tid, nthr, base, h, q0, qr.y);
      if (tid < BR) {
        let s = q0 + tid;
        var sg = 0u;
        var x = vec2<f32>(0.0, 0.0);
        if (s < qr.y) {
          sg = seg[base + s];
          x = ld[(base + s) * p.Hq + h];
        }
        sqseg[tid] = sg;
        sld[tid] = x;
      }
      workgroupBarrier();
      for (var rr = c; rr < BR; rr += NC) {
        var pr = 0.0;
        var ds = 0.0;
        if (myks != 0u && sqseg[rr] == myks && mykey <= q0 + rr) {
          let x = sld[rr];
          pr = exp(dot_q_k(rr, j) * p.scale - x.x);
          ds = pr * (dot_do_v(rr, j) - x.y);
        }
        sp[j * BR + rr] = pr;
        sds[j * BR + rr] = ds;
      }
      workgroupBarrier();
      for (var rr = 0u; rr < BR; rr++) {
        let pr = sp[j * BR + rr];
        let ds = sds[j * BR + rr];
        for (var i = 0u; i < DPT; i++) {
          let d = c + i * NC;
          if (d < DH) {
            dva[i] += pr * sdo[rr * (DH + 1u) + d];
            dka[i] += ds * sq[rr * (DH + 1u) + d];
          }
        }
      }
    }
  }
  if (mykey < p.S) {
    let t = base + mykey;
    for (var i = 0u; i < DPT; i++) {
      let d = c + i * NC;
      if (d < DH) {
        dk[(t * p.Hkv + kvh) * DH + d] = dka[i] * p.scale;
        dv[(t * p.Hkv + kvh) * DH + d] = dva[i];
      }
    }
  }
}

// ---- decode ---------------------------------------------------------------------------------

var<workgroup> sqd: array<f32, DH>;
var<workgroup> sred: array<f32, DWG>;
var<workgroup> spd: array<f32, DWG>;
var<workgroup> ulen: u32;

fn dec_max(tid: u32, x: f32) -> f32 {
  sred[tid] = x;
  workgroupBarrier();
  for (var st = DWG / 2u; st > 0u; st = st >> 1u) {
    if (tid < st) {
      sred[tid] = max(sred[tid], sred[tid + st]);
    }
    workgroupBarrier();
  }
  let r = sred[0];
  workgroupBarrier();
  return r;
}

fn dec_sum(tid: u32, x: f32) -> f32 {
  sred[tid] = x;
  workgroupBarrier();
  for (var st = DWG / 2u; st > 0u; st = st >> 1u) {
    if (tid < st) {
      sred[tid] = sred[tid] + sred[tid + st];
    }
    workgroupBarrier();
  }
  let r = sred[0];
  workgroupBarrier();
  return r;
}

// One query (b, h) against cache keys [0, len): chunks of DWG keys, one key per invocation for
// the scores, then (column d, key subset) per invocation for P·V.
fn decode_core(b: u32, h: u32, len: u32, tid: u32) {
  let kvh = h / (pd.Hq / pd.Hkv);
  for (var d = tid; d < DH; d += DWG) {
    sqd[d] = q[(b * pd.Hq + h) * DH + d];
  }
  workgroupBarrier();
  let nsub = DWG / DH;
  let dcol = tid % DH;
  let sub = tid / DH;
  var m = NEG;
  var l = 0.0;
  var acc = 0.0;
  for (var c0 = 0u; c0 < len; c0 += DWG) {
    let j = c0 + tid;
    var sc = NEG;
    if (j < len) {
      let off = ((b * pd.maxS + j) * pd.Hkv + kvh) * DH;
      var s = 0.0;
      for (var d = 0u; d < DH; d++) {
        s += sqd[d] * k[off + d];
      }
      sc = s * pd.scale;
    }
    let mnew = max(m, dec_max(tid, sc));
    let corr = exp(m - mnew);
    var pr = 0.0;
    if (j < len) {
      pr = exp(sc - mnew);
    }
    spd[tid] = pr;
    l = l * corr + dec_sum(tid, pr);  // its barriers also publish spd
    acc = acc * corr;
    if (sub < nsub) {
      let cnt = min(DWG, len - c0);
      for (var jj = sub; jj < cnt; jj += nsub) {
        acc += spd[jj] * v[((b * pd.maxS + c0 + jj) * pd.Hkv + kvh) * DH + dcol];
      }
    }
    m = mnew;
    workgroupBarrier();
  }
  sred[tid] = select(0.0, acc, sub < nsub);
  workgroupBarrier();
  if (tid < DH) {
    var s = 0.0;
    for (var u = 0u; u < nsub; u++) {
      s += sred[u * DH + tid];
    }
    od[(b * pd.Hq + h) * DH + tid] = select(0.0, s / l, l > 0.0);
  }
}

@compute @workgroup_size(DWG)
fn attn_decode(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let gi = group_index(wid, nwg);
  if (gi >= pd.B * pd.Hq) {
    return;
  }
  decode_core(gi / pd.Hq, gi % pd.Hq, min(pd.L, pd.maxS), tid);
}

@compute @workgroup_size(DWG)
fn attn_decode_lens(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let gi = group_index(wid, nwg);
  if (gi >= pd.B * pd.Hq) {
    return;
  }
  let b = gi / pd.Hq;
  if (tid == 0u) {
    ulen = min(lens[b], pd.maxS);
  }
  decode_core(b, gi % pd.Hq, workgroupUniformLoad(&ulen), tid);
}
