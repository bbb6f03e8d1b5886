// Python's text forms of floats, for files that Python tools read or compare byte for byte
// (bitsandbytes' quant_state JSON, PEFT's adapter_config.json): repr(float) and json.dumps.

/**
 * Python repr() of a float (shortest round-trip digits; exponent form when the exponent is < -4 or >= 16,
 * with a sign and at least two digits; integral values get ".0"): 0.1, 1e-05, 1.0, 3e+20, 1.5e-07.
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // String() gives the shortest round-trip digits, choosing the closest when several qualify (as Python)
  const [mant, expPart] = String(Math.abs(x)).split('e');
  const dot = mant.indexOf('.');
  const intPart = dot < 0 ? mant : mant.slice(0, dot);
  const all = intPart + (dot < 0 ? '' : mant.slice(dot + 1));
  const lead = all.length - all.replace(/^0+/, '').length;
  const digits = all.slice(lead).replace(/0+$/, '');
  const e = (expPart ? parseInt(expPart, 10) : 0) + intPart.length - 1 - lead; // x = d.ddd * 10^e
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const ip = digits.slice(0, e + 1).padEnd(e + 1, '0');
  return `${sign}${ip}.${digits.slice(e + 1) || '0'}`;
}

/** A float as json.dumps writes it (NaN/Infinity tokens for non-finite values). */
export function pythonJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  return pythonFloatRepr(x);
}

