// bitsandbytes 4-bit (NF4 / FP4) blockwise quantization and dequantization, bit-exact with
// the CUDA path of bitsandbytes (see shared/specs/qlora-formats.md §1–§2).
//
// Layout: W is flattened row-major; block b covers flat elements [b*bs, (b+1)*bs); two codes
// per byte, HIGH nibble first; byte k of the packed array is byte (k % 4) of the little-endian
// u32 word k / 4. So element j (0..7) of packed word w sits at bits 4*(j ^ 1) .. 4*(j ^ 1)+3.
// Blocksizes are powers of two in 32..4096, so a block always covers whole u32 words.
//
// Exactness. The quantizer works on f32 BIT PATTERNS with integer arithmetic only: absmax is
// the max of |bits|, the reciprocal 1/absmax is a correctly rounded integer long division
// (round half to even, subnormal and overflow-to-inf results included), x = a * r is an exact
// 24x24-bit integer product rounded to f32, and the comparisons with the thresholds are
// integer comparisons of order-preserving keys. Nothing can be flushed to zero (WGSL allows
// implementations to flush subnormals) or contracted into an FMA by the driver.
// The dequantizer does the one f32 multiply code * absmax in floating point when the product
// cannot be subnormal (the host passes the smallest safe absmax exponent), else with the same
// integer multiply. The double-quantized absmax is rebuilt as f32(f32(map[q] * nested) + offset):
// the product passes through an integer XOR with a runtime zero, so it cannot be fused with the add.

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

// NF4 thresholds: f32 midpoints of adjacent NF4 codes (CUDA dQuantizeNF4), as keys of their bits.
const NF4_T = array<u32, 15>(
  0xbf591cd8u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu, 0xbe0d38bcu, 0xbd3a7871u,
  0x3d22faffu, 0x3df64862u, 0x3e5067e0u, 0x3e9582d4u, 0x3ec753f9u, 0x3f006d04u, 0x3f248dafu, 0x3f5c89dau);

// The code of x (f32 bits, possibly NaN) for QTYPE 0 = NF4, 1 = FP4, exactly as CUDA.
fn code_of(x: u32, qtype: u32) -> u32 {
  let mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) {
    return 0u; // NaN: every comparison is false
  }
  if (qtype == 0u) {
    let k = fkey(x);
    var c = 0u;
    for (var i = 0u; i < 15u; i++) {
      c += select(0u, 1u, fkey(NF4_T[i]) < k);
    }
    return c;
  }
  // FP4: sign 8 if x < 0 (so -0 has sign 0); magnitudes compared as positive bit patterns.
  let sign = select(0u, 8u, (x & 0x80000000u) != 0u && mag != 0u);
  var c = 0u;
  if (mag > 0x3e955555u) {        // 0.29166667
    if (mag > 0x3f155550u) {      // 0.583333
      c = select(2u, 3u, mag > 0x3f555555u); // 0.8333333
    } else {
      c = select(4u, 5u, mag > 0x3ed55556u); // 0.4166667
    }
  } else if (mag > 0x3db00000u) { // 0.0859375
    c = select(6u, 7u, mag > 0x3e555555u);   // 0.20833333
  } else {
    c = select(0u, 1u, mag > 0x3b2aaab9u);   // 0.00260417
  }
  return c + sign;
}

// The code of element a (bits) in a block with absmax bits `amax` and reciprocal bits `r`.
fn quant_elem(a: u32, amax: u32, r: u32, qtype: u32) -> u32 {
  if (amax == 0u) {
    return 0u; // 0 * inf = NaN
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
  return code_of(fmul_bits(a, r), qtype);
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
  pad: u32,
}

@group(0) @binding(0) var<uniform> qp: QParams;
@group(0) @binding(1) var<storage, read> qsrc: array<u32>;          // f32 bits
@group(0) @binding(2) var<storage, read_write> qpacked: array<u32>; // ceil(n/8) words
@group(0) @binding(3) var<storage, read_write> qabsmax: array<u32>; // f32 bits, nBlocks

override QWG: u32 = 64;
var<workgroup> red: array<u32, QWG>;
var<workgroup> recips: array<u32, QWG>;

fn load_word_max(w: u32) -> u32 {
  var mx = 0u;
  let e0 = w * 8u;
  for (var j = 0u; j < 8u; j++) {
    let e = e0 + j;
    if (e < qp.n) {
      mx = max(mx, qsrc[e] & 0x7fffffffu);
    }
  }
  return mx;
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
  let amax = red[lid - t];
  if (t == 0u && valid) {
    var r = 0x7f800000u;
    if (amax >= 0x7f800000u) {
      r = 0u;
    } else if (amax != 0u) {
      r = recip_bits(amax);
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
        c = quant_elem(qsrc[e], amax, r, qtype);
      } else if (e == qp.n && (e & 1u) == 1u) {
        c = quant_elem(0u, amax, r, qtype); // odd n: the padding nibble encodes 0 * r (NF4 7, FP4 0; 0 if r = inf)
      }
      word = word | (c << (4u * (j ^ 1u)));
    }
    qpacked[w] = word;
  }
}

// ---- dequantize ----------------------------------------------------------------------------

struct DParams {
  nWords: u32,     // ceil(n / 8): one invocation per word
  wpbShift: u32,   // log2(bs / 8): block of word w = w >> wpbShift
  gridX: u32,      // invocations along x of the (2D) grid = workgroups.x * DWG
  safeExp: u32,    // absmax biased exponents >= safeExp give no subnormal code * absmax
  dqOffset: f32,   // double quant: the offset added to the rebuilt absmax
  zero: u32,       // always 0 (an opaque runtime zero that keeps the compiler from fusing)
  nestedShift: u32, // double quant: log2(nested blocksize), 8 for bnb's 256
}

override DWG: u32 = 64;

@group(0) @binding(0) var<uniform> dp: DParams;
@group(0) @binding(1) var<uniform> dcode: array<vec4<f32>, 4>;         // the 16 code values
@group(0) @binding(2) var<storage, read> dpacked: array<u32>;
@group(0) @binding(3) var<storage, read> dabsmax: array<u32>;          // f32 bits (plain) or u8 codes (DQ)
@group(0) @binding(4) var<storage, read_write> dout: array<vec4<f32>>; // 2 vec4 per word
@group(0) @binding(5) var<storage, read> dnested: array<f32>;          // DQ: nested absmax per 256 blocks
@group(0) @binding(6) var<uniform> dmap: array<vec4<f32>, 64>;         // DQ: the 256-entry dynamic map

fn code_val(c: u32) -> f32 {
  return dcode[c >> 2u][c & 3u];
}

fn dequant_word(w: u32, word: u32, amax: u32) {
  var v: array<f32, 8>;
  if (((amax >> 23u) & 0xffu) >= dp.safeExp) {
    let s = bitcast<f32>(amax);
    for (var j = 0u; j < 8u; j++) {
      v[j] = code_val((word >> (4u * (j ^ 1u))) & 15u) * s;
    }
  } else {
    for (var j = 0u; j < 8u; j++) {
      let c = bitcast<u32>(code_val((word >> (4u * (j ^ 1u))) & 15u));
      v[j] = bitcast<f32>(fmul_bits(c, amax));
    }
  }
  dout[2u * w] = vec4<f32>(v[0], v[1], v[2], v[3]);
  dout[2u * w + 1u] = vec4<f32>(v[4], v[5], v[6], v[7]);
}

@compute @workgroup_size(DWG)
fn dequant4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x + gid.y * dp.gridX;
  if (w >= dp.nWords) {
    return;
  }
  dequant_word(w, dpacked[w], dabsmax[w >> dp.wpbShift]);
}

// absmax_f32[b] = f32(f32(map[q[b]] * nested[b >> 8]) + offset), immune to FMA contraction.
fn rebuild_absmax(b: u32) -> u32 {
  let q = (dabsmax[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
  let p = dmap[q >> 2u][q & 3u] * dnested[b >> dp.nestedShift];
  let opaque = bitcast<f32>(bitcast<u32>(p) ^ dp.zero);
  return bitcast<u32>(opaque + dp.dqOffset);
}

@compute @workgroup_size(DWG)
fn dequant4_dq(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x + gid.y * dp.gridX;
  if (w >= dp.nWords) {
    return;
  }
  dequant_word(w, dpacked[w], rebuild_absmax(w >> dp.wpbShift));
}

// ---- absmax rebuild (double quant -> f32) --------------------------------------------------

struct RParams {
  nBlocks: u32,
  gridX: u32,
  zero: u32,
  offset: f32,
  nestedShift: u32,
}

@group(0) @binding(0) var<uniform> rp: RParams;
@group(0) @binding(1) var<storage, read> rq: array<u32>;          // u8 codes, 4 per word
@group(0) @binding(2) var<storage, read> rnested: array<f32>;
@group(0) @binding(3) var<uniform> rmap: array<vec4<f32>, 64>;
@group(0) @binding(4) var<storage, read_write> rout: array<f32>;

@compute @workgroup_size(DWG)
fn rebuild_absmax_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x + gid.y * rp.gridX;
  if (b >= rp.nBlocks) {
    return;
  }
  let q = (rq[b >> 2u] >> (8u * (b & 3u))) & 0xffu;
  let p = rmap[q >> 2u][q & 3u] * rnested[b >> rp.nestedShift];
  let opaque = bitcast<f32>(bitcast<u32>(p) ^ rp.zero);
  rout[b] = opaque + rp.offset;
}
