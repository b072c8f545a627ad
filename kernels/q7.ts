/**
 * Int8 weights against 7-bit activation codes (kernels/q7.wat's matmul_q7 and its scalar twin here), for the
 * CPU target's LM head screen (backends/cpu/head_screen.ts).
 *
 * The screen scores every vocabulary row approximately and bounds the error rigorously, so it needs only
 * speed from its matmul, not precision: with 7-bit activations WebAssembly's relaxed SIMD does 16
 * multiply-adds per instruction (`i32x4.relaxed_dot_i8x16_i7x16_add_s`, one VNNI `vpdpbusd` where the CPU
 * has it) against the int16 path's 8 plus the widening of the weights (kernels/q8.ts). The looser
 * activation step widens the bound, which costs a few more candidate rows recomputed in float32 (2-6 per
 * logit row on the default model instead of 1-2).
 *
 * Scheme: each weight row symmetric int8 (scale = max|w| / 127, codes in [-127, 127]; the same codes as
 * kernels/q8.ts), with the sum of its codes; each activation row symmetric 7-bit (scale sx = max|x| / 63,
 * codes q in [-63, 63]) stored as u = q + 64, the unsigned range every relaxed-SIMD implementation
 * multiplies exactly. y[t, o] = f32(f64(w[o] · u[t] - 64 · rowsum[o]) · scale[o]) = f32((w · q) · scale),
 * then out = f32(y · sx) like finishQ8. The dot products are exact integers, so the WASM kernel, this twin
 * and any thread count give the same bits.
 *
 * @module
 */
import { quantizeRowInt8 } from "./q8.ts";

/** An int8 weight matrix [rows, cols] for matmul_q7: codes padded to `stride` columns, (scale, row sum) pairs. */
export interface Q7Weight {
  /** Output rows (the matmul's outDim). */
  readonly rows: number;
  /** Input columns (the matmul's inDim). */
  readonly cols: number;
  /** cols rounded up to a multiple of 16 (the padding codes are 0). */
  readonly stride: number;
  /** [rows * stride] int8 codes. */
  readonly codes: Int8Array;
  /** [rows * 2]: row o's float32 scale at 2o, the sum of its codes (an integer, exact in float32) at 2o + 1. */
  readonly meta: Float32Array;
}

/** Columns rounded up to a multiple of 16. */
export function q7Stride(cols: number): number {
  return (cols + 15) & ~15;
}

/** Input columns matmul_q7 takes at most: keeps its i32 lanes below 2^31 (4 · 127 · 127 per 16 inputs). */
export const Q7_MAX_COLS = 65536;

/**
 * Fill `dst` with the int8 quantization of the float32 [rows, cols] matrix `w` (kernels/q8.ts' rule: scale
 * f32(max|w| / 127), codes round(w / scale) clamped to 127) and each row's code sum.
 */
export function quantizeQ7Into(w: Float32Array, dst: Q7Weight): void {
  const { rows, cols, stride, codes, meta } = dst;
  if (w.length !== rows * cols) {
    throw new Error(`quantizeQ7Into: ${w.length} values, expected ${rows} x ${cols}`);
  }
  for (let o = 0; o < rows; o++) {
    meta[2 * o] = quantizeRowInt8(w, o * cols, cols, codes, o * stride, "quantizeQ7Into", o);
    let sum = 0;
    for (let k = 0; k < cols; k++) sum += codes[o * stride + k];
    meta[2 * o + 1] = sum;
    codes.fill(0, o * stride + cols, (o + 1) * stride);
  }
}

/**
 * Quantize T activation rows x [T, n] (from xOff) to unsigned codes xu [T, stride] (u = q + 64, q =
 * round(x / sx) clamped to [-63, 63]; 0 in the padding) and per-row scales sx [T] = f32(max|x| / 63). With
 * `err`, also each row's quantization error: err[2t] = max_k |x_k - sx q_k|, err[2t + 1] = ||x - sx q||₂
 * (float64, rounded up). A row with a non-finite value gets scale 0 (codes 64) and infinite errors.
 */
export function quantizeRowsU7(
  x: Float32Array,
  xOff: number,
  T: number,
  n: number,
  stride: number,
  xu: Uint8Array,
  sx: Float32Array,
  err?: Float64Array,
): void {
  for (let t = 0; t < T; t++) {
    const row = xOff + t * n;
    let max = 0, nan = false;
    for (let k = 0; k < n; k++) {
      const a = Math.abs(x[row + k]);
      if (a > max) max = a;
      else if (a !== a) nan = true;
    }
    const ok = Number.isFinite(max) && !nan;
    const scale = max > 0 && ok ? Math.fround(max / 63) : 0;
    sx[t] = scale;
    let eMax = 0, e2 = 0;
    for (let k = 0; k < n; k++) {
      const v = x[row + k];
      const r = scale > 0 ? Math.round(v / scale) : 0;
      const q = r > 63 ? 63 : r < -63 ? -63 : r;
      xu[t * stride + k] = q + 64;
      const e = Math.abs(v - scale * q); // scale * q is exact in float64 (24 + 6 bits)
      if (e > eMax) eMax = e;
      e2 += e * e;
    }
    xu.fill(0, t * stride + n, (t + 1) * stride);
    if (err) {
      err[2 * t] = ok ? eMax * (1 + 1e-12) : Infinity;
      err[2 * t + 1] = ok ? Math.sqrt(e2) * (1 + 1e-12) : Infinity;
    }
  }
}

/**
 * The scalar twin of matmul_q7: y[t * ys + o] = f32((xu[t] · codes[o] - 64 · rowsum[o]) · scale[o]) for
 * t < T, o < m. Integer sums are exact in float64 here and in i32 lanes there, so the bits are the WASM
 * kernel's.
 */
export function matmulQ7Js(
  y: Float32Array,
  xu: Uint8Array,
  w: Q7Weight,
  T: number,
  m: number,
  ys: number,
): void {
  const S = w.stride, codes = w.codes, meta = w.meta;
  for (let t = 0; t < T; t++) {
    const xo = t * S;
    for (let o = 0; o < m; o++) {
      const wo = o * S;
      let total = 0;
      for (let k = 0; k < S; k++) total += xu[xo + k] * codes[wo + k];
      y[t * ys + o] = Math.fround((total - 64 * meta[2 * o + 1]) * meta[2 * o]);
    }
  }
}
