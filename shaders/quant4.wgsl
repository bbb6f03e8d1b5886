// bitsandbytes 4-bit (NF4 / FP4) blockwise quantization and dequantization, bit-exact with
// the CUDA path of bitsandbytes (see shared/specs/qlora-formats.md §1–§2).
//
// Layout: W is flattened row-major; block b covers flat elements [b*bs, (b+1)*bs); two codes
// per byte, HIGH nibble first; byte k of the packed array is byte (k % 4) of the little-endian
// u32 word k / 4. So element j (0..7) of packed word w sits at bits 4*(j ^ 1) .. 4*(j ^ 1)+3.
// Blocksizes are powers of two in 32..4096, so a block always covers whole u32 words.
//
// Subnormals: bnb builds its CUDA kernels with --use_fast_math, so every f32 op there flushes subnormal
// inputs and results to zero (FTZ). `ftz` = 1 reproduces that (the CPU reference's default), `ftz` = 0
// gives IEEE subnormals (the reference's ftz: false). NaN results are written as CUDA's 0x7fffffff.
//
// Exactness. The quantizer works on f32 BIT PATTERNS with integer arithmetic only: absmax is
// the max of |bits| (NaN skipped), the reciprocal 1/absmax is a correctly rounded integer long division
// (round half to even, subnormal and overflow-to-inf results included), x = a * r is an exact
// 24x24-bit integer product rounded to f32, and the comparisons with the thresholds are
// integer comparisons of order-preserving keys. So whether the GPU itself flushes subnormals (WGSL
// allows either) or contracts a*b+c into an FMA cannot change a bit.
// The dequantizer does the one f32 multiply code * absmax in floating point when no product can be
// subnormal or NaN (the host checks the absmax values), else with the same integer multiply. The
// double-quantized absmax is rebuilt as f32(ftz(f32(map[q] * nested)) + offset): exactly, with the
// integer multiply (rebuild_absmax_f32), or inline in floating point when the host has checked that every
// product is normal, the product then passing through an integer XOR with a runtime zero so the driver
// cannot fuse it with the add into an FMA.
//
// Entry points: quantize4; dequant4 (float), dequant4_dq (float, inline double-quant rebuild),
// dequant4_exact (integers); rebuild_absmax_f32. Double quantization itself (the mean offset, then the
// 8-bit blockwise quantization of absmax) runs on the CPU (src/quant/gpu/gpu-quant.ts says why).

// ---- f32 bit helpers (integers only) ------------------------------------------------------

// Rounds a 24-bit significand `sig` (bit 23 set) with a guard bit and a sticky flag, at biased
// exponent `be` (value = sig.guard|sticky * 2^(be - 150)), to f32 bits, round half to even;
// subnormal results and overflow to +inf included. Sign not included.
fn round_pack(sig_in: u32, guard_in: u32, sticky_in: bool, be: i32) -> u32 {
  var sig = sig_in;
  var guard = guard_in;
  var sticky = sticky_in;
  var e = be;
  if (e < 1) {
    let sh = u32(1 - e);
    if (sh > 25u) {
      return 0u;
    }
    // shift right by sh: the new guard is bit sh-1, the rest joins sticky
    let newGuard = (sig >> (sh - 1u)) & 1u;
    let lostMask = (1u << (sh - 1u)) - 1u;
    sticky = sticky || (guard != 0u) || ((sig & lostMask) != 0u);
    guard = newGuard;
    sig = select(sig >> sh, 0u, sh >= 32u);
    e = 1;
  }
  if (guard != 0u && (sticky || (sig & 1u) != 0u)) {
    sig = sig + 1u;
  }
  // (e - 1) << 23 + sig is continuous across the subnormal/normal edge and the carry.
  if (e >= 255) {
    return 0x7f800000u;
  }
  let bits = (u32(e - 1) << 23u) + sig;
  return min(bits, 0x7f800000u);
}

// Splits positive finite nonzero f32 bits into a 24-bit significand (bit 23 set) and biased exponent
// (value = sig * 2^(e - 150)); subnormals are normalized (e may be <= 0).
fn unpack_mag(bits: u32) -> vec2<i32> {
  let f = (bits >> 23u) & 0xffu;
  var m = bits & 0x7fffffu;
  if (f == 0u) {
    let s = countLeadingZeros(m) - 8u;
    return vec2<i32>(i32(m << s), 1 - i32(s));
  }
  return vec2<i32>(i32(m | 0x800000u), i32(f));
}

// Correctly rounded f32 reciprocal of positive finite nonzero `a` (bits) -> bits (may be
// subnormal, or +inf on overflow). Integer long division, round half to even.
fn recip_bits(a: u32) -> u32 {
  let um = unpack_mag(a);
  let m = u32(um.x);
  let e = um.y;
  if (m == 0x800000u) {
    // a power of two: 1/a = 2^(127 - e) * 2^... exactly; significand 2^23 at biased exponent 254 - e
    return round_pack(0x800000u, 0u, false, 254 - e);
  }
  // q = floor(2^48 / m), 25 bits (2^24 < q < 2^25); 1/a = (2^48/m) * 2^(102 - e - 127 + 127)...
  var r = 0x1000000u - m; // 2^24 - m: the leading quotient bit (bit 24) is 1
  var q = 1u;
  for (var i = 0u; i < 24u; i++) {
    r = r << 1u;
    q = q << 1u;
    if (r >= m) {
      r = r - m;
      q = q | 1u;
    }
  }
  // 1/a = q.rest * 2^(102 - e) with q in [2^24, 2^25): significand q >> 1, guard q & 1.
  return round_pack(q >> 1u, q & 1u, r != 0u, 253 - e);
}

// Correctly rounded f32 product of two finite f32 values given as bits (signs, zeros and
// subnormals included; overflow gives +-inf).
fn fmul_bits(a: u32, b: u32) -> u32 {
  let sign = (a ^ b) & 0x80000000u;
  let am = a & 0x7fffffffu;
  let bm = b & 0x7fffffffu;
  if (am == 0u || bm == 0u) {
    return sign;
  }
  let ua = unpack_mag(am);
  let ub = unpack_mag(bm);
  let ma = u32(ua.x);
  let mb = u32(ub.x);
  // exact 48-bit product ma * mb = p1 * 2^24 + p0
  let ah = ma >> 12u;
  let al = ma & 0xfffu;
  let bh = mb >> 12u;
  let bl = mb & 0xfffu;
  let mid = ah * bl + al * bh;
  let lo = ((mid & 0xfffu) << 12u) + al * bl;
  let p1 = ah * bh + (mid >> 12u) + (lo >> 24u);
  let p0 = lo & 0xffffffu;
  // value = (p1 * 2^24 + p0) * 2^(ea + eb - 300); p1 in [2^22, 2^24)
  var sig: u32;
  var guard: u32;
  var sticky: bool;
  var e: i32;
  if (p1 >= 0x800000u) {
    sig = p1;
    guard = p0 >> 23u;
    sticky = (p0 & 0x7fffffu) != 0u;
    e = ua.y + ub.y - 126;
  } else {
    sig = (p1 << 1u) | (p0 >> 23u);
    guard = (p0 >> 22u) & 1u;
    sticky = (p0 & 0x3fffffu) != 0u;
    e = ua.y + ub.y - 127;
  }
  return sign | round_pack(sig, guard, sticky, e);
}

// An order-preserving key of f32 bits (non-NaN): a < b as floats <=> key(a) < key(b) (with -0 < +0).
fn fkey(bits: u32) -> u32 {
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

// The code of x (f32 bits, possibly NaN) for qtype 0 = NF4, 1 = FP4, exactly as CUDA: NF4 counts the 15
// thresholds strictly below x; FP4 takes sign 8 if x < 0 (so -0 has sign 0) and the magnitude index of
// the 7 literal thresholds |x| is above. The threshold bits come from the host (src/quant/codes.ts).
fn code_of(x: u32, qtype: u32) -> u32 {
  let mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) {
    return 0u; // NaN: every comparison is false
  }
  if (qtype == 0u) {
    let k = fkey(x);
    var c = 0u;
    for (var i = 0u; i < 15u; i++) {
      c += select(0u, 1u, fkey(qp.nf4t[i >> 2u][i & 3u]) < k);
    }
    return c;
  }
  let sign = select(0u, 8u, (x & 0x80000000u) != 0u && mag != 0u);
  // positive f32 values order like their bits
  var above = 0u;
  for (var i = 0u; i < 7u; i++) {
    above += select(0u, 1u, mag > qp.fp4t[i >> 2u][i & 3u]);
  }
  // magnitude index for |x| above k thresholds (CUDA's tree): 0, 1, 6, 7, 4, 5, 2, 3
  let idx = array<u32, 8>(0u, 1u, 6u, 7u, 4u, 5u, 2u, 3u);
  return idx[above] + sign;
}

// The code of element a (bits) in a block with absmax bits `amax` and reciprocal bits `r`:
// code(ftz(f32(a * r))).
fn quant_elem(a: u32, amax: u32, r: u32, qtype: u32, ftz: u32) -> u32 {
  if (amax == 0u || amax >= 0x80000000u || (a & 0x7fffffffu) > 0x7f800000u) {
    return 0u; // 0 * inf = NaN; an all-NaN block; a NaN element
  }
  if ((a & 0x7fffffffu) >= 0x7f800000u) {
    // a = +-inf (so absmax = inf and r = 0): inf * 0 = NaN
    return 0u;
  }
  if (amax >= 0x7f800000u) {
    return code_of(a & 0x80000000u, qtype); // r = 1/inf = 0: x = +-0
  }
  if (r == 0x7f800000u) {
    // r = +inf: x = +-inf, or NaN for a = +-0
    if ((a & 0x7fffffffu) == 0u) {
      return 0u;
    }
    return code_of((a & 0x80000000u) | 0x7f800000u, qtype);
  }
  if (r == 0u) {
    return code_of(a & 0x80000000u, qtype); // a flushed reciprocal: x = +-0
  }
  return code_of(flush(fmul_bits(a, r), ftz), qtype);
}

// ---- quantize ------------------------------------------------------------------------------

struct QParams {
  n: u32,        // number of elements
  nWords: u32,   // ceil(n / 8)
  nBlocks: u32,  // ceil(n / bs)
  wpb: u32,      // words per block = bs / 8
  tpb: u32,      // threads per block = min(QWG, wpb) (a power of two)
  gridX: u32,    // workgroups along x of the (2D) grid
  qtype: u32,    // 0 = NF4, 1 = FP4
  ftz: u32,      // 1: flush subnormals like CUDA fast math; 0: IEEE
  bs: u32,       // blocksize
  pad0: u32,
  pad1: u32,
  pad2: u32,
  nf4t: array<vec4<u32>, 4>, // the 15 NF4 thresholds (f32 bits), ascending
  fp4t: array<vec4<u32>, 2>, // the 7 FP4 magnitude thresholds (f32 bits), ascending
}

@group(0) @binding(0) var<uniform> qp: QParams;
@group(0) @binding(1) var<storage, read> qsrc: array<u32>;          // f32 bits
@group(0) @binding(2) var<storage, read_write> qpacked: array<u32>; // ceil(n/8) words
@group(0) @binding(3) var<storage, read_write> qabsmax: array<u32>; // f32 bits, nBlocks

override QWG: u32 = 64;
var<workgroup> red: array<u32, QWG>;
var<workgroup> recips: array<u32, QWG>;

// max over the word of (|a| bits + 1), NaN skipped; 0 when the word has no non-NaN element
fn load_word_max(w: u32) -> u32 {
  var mx = 0u;
  let e0 = w * 8u;
  for (var j = 0u; j < 8u; j++) {
    let e = e0 + j;
    if (e < qp.n) {
      let mag = qsrc[e] & 0x7fffffffu;
      if (mag <= 0x7f800000u) {
        mx = max(mx, mag + 1u);
      }
    }
  }
  return mx;
}

// flush a subnormal (bits) to a zero of the same sign when ftz is on
fn flush(bits: u32, ftz: u32) -> u32 {
  if (ftz != 0u && (bits & 0x7f800000u) == 0u) {
    return bits & 0x80000000u;
  }
  return bits;
}

// One workgroup handles QWG / tpb blocks; tpb threads per block, each thread whole u32 words.
@compute @workgroup_size(QWG)
fn quantize4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bpw = QWG / qp.tpb;
  let wg = wid.x + wid.y * qp.gridX;
  let lb = lid / qp.tpb;      // block within the workgroup
  let t = lid % qp.tpb;       // thread within the block
  let block = wg * bpw + lb;
  let valid = block < qp.nBlocks;
  let w0 = block * qp.wpb;
  let wpt = qp.wpb / qp.tpb;
  var mx = 0u;
  if (valid) {
    for (var i = 0u; i < wpt; i++) {
      mx = max(mx, load_word_max(w0 + t + i * qp.tpb));
    }
  }
  red[lid] = mx;
  var s = qp.tpb / 2u;
  loop {
    if (s == 0u) {
      break;
    }
    workgroupBarrier();
    if (t < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    s = s / 2u;
  }
  workgroupBarrier();
  let key = red[lid - t];
  // CUDA starts a full block's max at -FLT_MAX and a partial one at 0 (its zero padding)
  let full = (block + 1u) * qp.bs <= qp.n;
  var amax = select(0u, 0xff7fffffu, full);
  if (key != 0u) {
    amax = flush(key - 1u, qp.ftz);
  }
  if (t == 0u && valid) {
    var r = 0x7f800000u;
    if (amax >= 0x7f800000u) {
      r = 0u; // 1/inf (or an all-NaN block: every code is 0 anyway)
    } else if (amax != 0u) {
      r = flush(recip_bits(amax), qp.ftz);
    }
    recips[lb] = r;
    qabsmax[block] = amax;
  }
  workgroupBarrier();
  if (!valid) {
    return;
  }
  let r = recips[lb];
  let qtype = qp.qtype;
  for (var i = 0u; i < wpt; i++) {
    let w = w0 + t + i * qp.tpb;
    if (w >= qp.nWords) {
      continue;
    }
    var word = 0u;
    let e0 = w * 8u;
    for (var j = 0u; j < 8u; j++) {
      let e = e0 + j;
      var c = 0u;
      if (e < qp.n) {
        c = quant_elem(flush(qsrc[e], qp.ftz), amax, r, qtype, qp.ftz);
      } else if (e == qp.n && (e & 1u) == 1u) {
        c = quant_elem(0u, amax, r, qtype, 0u); // odd n: the padding nibble encodes 0 * r (NF4 7, FP4 0; 0 if r = inf)
      }
      word = word | (c << (4u * (j ^ 1u)));
    }
    qpacked[w] = word;
  }
}

// ---- dequantize ----------------------------------------------------------------------------
// out = ftz(f32(code[nibble] * absmax[block])). Two kernels: `dequant4` multiplies in floating point,
// which is exact whenever no product can be subnormal or NaN (every absmax finite with a biased exponent
// >= the code table's safe exponent: the host checks the absmax values and picks it then);
// `dequant4_exact` uses the integer multiply for every element (any absmax, FTZ or IEEE).
// `dequant4_dq` is dequant4 with the double-quantized absmax rebuilt inline (see there).
// (Both in one kernel behind a per-block branch ran 8x slower on SwiftShader, which executes both sides of
// a branch under lane masks.) For the exact kernel a double-quantized absmax is first rebuilt by
// rebuild_absmax_f32.
// Each invocation dequantizes one packed word into 2 vec4; codes come two at a time from the byte-pair
// table (scalar loads).

struct DParams {
  nWords: u32,      // ceil(n / 8)
  wpbShift: u32,    // log2(bs / 8): block of word w = w >> wpbShift
  gridX: u32,       // invocations along x of the (2D) grid = workgroups.x * DWG
  ftz: u32,         // 1: flush subnormal results like CUDA fast math; 0: IEEE
  dqOffset: f32,    // dequant4_dq: the double-quant offset
  zero: u32,        // dequant4_dq: a runtime 0 (keeps the compiler from fusing the rebuild into an FMA)
  nestedShift: u32, // dequant4_dq: log2(nested blocksize)
}

override DWG: u32 = 64;

@group(0) @binding(0) var<uniform> dp: DParams;
@group(0) @binding(1) var<storage, read> dlut: array<f32, 512>;        // byte b -> (dlut[2b], dlut[2b+1]) = (code[b >> 4], code[b & 15])
@group(0) @binding(2) var<storage, read> dpacked: array<u32>;
@group(0) @binding(3) var<storage, read> dabsmax: array<u32>;          // f32 bits
@group(0) @binding(4) var<storage, read_write> dout: array<vec4<f32>>; // 2 per word
@group(0) @binding(5) var<storage, read> dnested: array<f32>;          // dequant4_dq
@group(0) @binding(6) var<storage, read> dmap: array<f32, 256>;        // dequant4_dq
// dequant4_dq reads the u8 absmax codes through binding 3

const NAN_BITS: u32 = 0x7fffffffu; // the NaN CUDA writes

fn dequant_word_f32(w: u32, s: f32) {
  let word = dpacked[w];
  let b0 = 2u * (word & 255u);
  let b1 = 2u * ((word >> 8u) & 255u);
  let b2 = 2u * ((word >> 16u) & 255u);
  let b3 = 2u * (word >> 24u);
  dout[2u * w] = vec4<f32>(dlut[b0], dlut[b0 + 1u], dlut[b1], dlut[b1 + 1u]) * s;
  dout[2u * w + 1u] = vec4<f32>(dlut[b2], dlut[b2 + 1u], dlut[b3], dlut[b3 + 1u]) * s;
}

@compute @workgroup_size(DWG)
fn dequant4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x + gid.y * dp.gridX;
  if (w >= dp.nWords) {
    return;
  }
  dequant_word_f32(w, bitcast<f32>(dabsmax[w >> dp.wpbShift]));
}

// Double-quantized absmax rebuilt inline in floating point: f32(f32(map[q] * nested) + offset), the
// product passed through an integer XOR with a runtime zero so it cannot be fused into an FMA. Exact when
// every product and every rebuilt absmax is normal (or zero), which the host checks before choosing it.
@compute @workgroup_size(DWG)
fn dequant4_dq(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x + gid.y * dp.gridX;
  if (w >= dp.nWords) {
    return;
  }
  let b = w >> dp.wpbShift;
  let q = (dabsmax[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
  let prod = dmap[q] * dnested[b >> dp.nestedShift];
  dequant_word_f32(w, bitcast<f32>(bitcast<u32>(prod) ^ dp.zero) + dp.dqOffset);
}

// ftz(f32(code * absmax)) with integers only (NaN written as 0x7fffffff).
fn dequant_exact(c: u32, amax: u32) -> f32 {
  let cb = bitcast<u32>(dlut[2u * c + 1u]);
  if ((amax & 0x7f800000u) == 0x7f800000u) {
    // absmax inf or NaN: inf * +-0 and NaN give NaN, else +-inf
    if ((amax & 0x7fffffu) != 0u || (cb & 0x7fffffffu) == 0u) {
      return bitcast<f32>((amax | NAN_BITS) & NAN_BITS); // a runtime expression: WGSL constants cannot be NaN
    }
    return bitcast<f32>(((cb ^ amax) & 0x80000000u) | 0x7f800000u);
  }
  return bitcast<f32>(flush(fmul_bits(cb, amax), dp.ftz));
}

@compute @workgroup_size(DWG)
fn dequant4_exact(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x + gid.y * dp.gridX;
  if (w >= dp.nWords) {
    return;
  }
  let word = dpacked[w];
  let a = dabsmax[w >> dp.wpbShift];
  dout[2u * w] = vec4<f32>(
    dequant_exact((word >> 4u) & 15u, a), dequant_exact(word & 15u, a),
    dequant_exact((word >> 12u) & 15u, a), dequant_exact((word >> 8u) & 15u, a));
  dout[2u * w + 1u] = vec4<f32>(
    dequant_exact((word >> 20u) & 15u, a), dequant_exact((word >> 16u) & 15u, a),
    dequant_exact(word >> 28u, a), dequant_exact((word >> 24u) & 15u, a));
}

// ---- absmax rebuild (double quant -> f32) --------------------------------------------------

struct RParams {
  nBlocks: u32,
  gridX: u32,
  ftz: u32,
  offset: f32,
  nestedShift: u32,
}

@group(0) @binding(0) var<uniform> rp: RParams;
@group(0) @binding(1) var<storage, read> rq: array<u32>;          // u8 codes, 4 per word
@group(0) @binding(2) var<storage, read> rnested: array<f32>;
@group(0) @binding(3) var<storage, read> rmap: array<f32, 256>;
@group(0) @binding(4) var<storage, read_write> rout: array<f32>;

@compute @workgroup_size(DWG)
fn rebuild_absmax_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x + gid.y * rp.gridX;
  if (b >= rp.nBlocks) {
    return;
  }
  let q = (rq[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
  let prod = flush(fmul_bits(bitcast<u32>(rmap[q]), bitcast<u32>(rnested[b >> rp.nestedShift])), rp.ftz);
  rout[b] = bitcast<f32>(prod) + rp.offset;
}
