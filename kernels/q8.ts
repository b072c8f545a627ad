/**
 * Int8 weights for the drafter's matmuls (kernels/matmul.wat's matmul_q8 and its scalar twin here).
 *
 * A drafter only proposes tokens: the target verifies every one of them, so a quantized drafter can change
 * which drafts get accepted but never the generated text. Its head (V x exit_dim) is most of the drafter's
 * bytes and work, and int8 halves what bf16 streams per step and lets WASM SIMD do 8 multiply-adds per
 * instruction (i32x4.dot_i16x8_s) instead of 4.
 *
 * Scheme: each weight row symmetric int8 (scale = max|w| / 127, codes in [-127, 127]); each activation row
 * symmetric int16 (scale = max|x| / 32767). y[t, o] = f32(f32(total · sw[o]) · sx[t]) (+ b[o]), total the
 * exact integer dot product of the codes, summed in chunks of 512 inputs that stay below 2^31.
 *
 * @module
 */

/** Inputs per integer chunk (see matmul.wat: keeps a chunk's i32 lane sums below 2^31). */
export const Q8_CHUNK = 512;

/** An int8 weight matrix [rows, cols] in kernel memory: codes padded to `stride` columns, one scale per row. */
export interface Q8Weight {
  /** Output rows (the matmul's outDim). */
  readonly rows: number;
  /** Input columns (the matmul's inDim). */
  readonly cols: number;
  /** cols rounded up to a multiple of 8 (the padding codes are 0). */
  readonly stride: number;
  /** [rows * stride] int8 codes. */
  readonly codes: Int8Array;
  /** [rows] float32 scales: w[o, k] ≈ codes[o * stride + k] * scales[o]. */
  readonly scales: Float32Array;
}

/** Columns rounded up to a multiple of 8. */
export function q8Stride(cols: number): number {
  return (cols + 7) & ~7;
}

/** Fill `dst` (from Kernels.allocQ8) with the int8 quantization of the float32 [rows, cols] matrix `w`. */
export function quantizeQ8Into(w: Float32Array, dst: Q8Weight): void {
  const { rows, cols, stride, codes, scales } = dst;
  if (w.length !== rows * cols) {
    throw new Error(`quantizeQ8Into: ${w.length} values, expected ${rows} x ${cols}`);
  }
  for (let o = 0; o < rows; o++) {
    scales[o] = quantizeRowInt8(w, o * cols, cols, codes, o * stride, "quantizeQ8Into", o);
    codes.fill(0, o * stride + cols, (o + 1) * stride);
  }
}

/**
 * Row `row` of a weight matrix (cols floats of w from wOff) as symmetric int8: codes[cOff + k] =
 * round(w / scale) clamped to [-127, 127] with scale f32(max|w| / 127), which it returns (0 for a zero row).
 * `who` names the caller in the error for a non-finite weight. Shared by kernels/q8.ts and kernels/q7.ts.
 */
export function quantizeRowInt8(
  w: Float32Array,
  wOff: number,
  cols: number,
  codes: Int8Array,
  cOff: number,
  who: string,
  row: number,
): number {
  let max = 0;
  for (let k = 0; k < cols; k++) {
    const a = Math.abs(w[wOff + k]);
    if (a > max) max = a;
  }
  if (!Number.isFinite(max)) throw new Error(`${who}: row ${row} holds a non-finite weight`);
  const scale = max > 0 ? Math.fround(max / 127) : 0;
  for (let k = 0; k < cols; k++) {
    const q = scale > 0 ? Math.round(w[wOff + k] / scale) : 0;
    codes[cOff + k] = q > 127 ? 127 : q < -127 ? -127 : q;
  }
  return scale;
}

/**
 * Quantize T activation rows x [T, n] into int16 codes xq [T, stride] (zero-padded) and per-row scales
 * sx [T]. Shared by both kernels, so they see the same codes.
 */
export function quantizeRowsI16(
  x: Float32Array,
  xOff: number,
  T: number,
  n: number,
  stride: number,
  xq: Int16Array,
  sx: Float32Array,
): void {
  for (let t = 0; t < T; t++) {
    const row = xOff + t * n;
    let max = 0;
    for (let k = 0; k < n; k++) {
      const a = Math.abs(x[row + k]);
      if (a > max) max = a;
    }
    const scale = max > 0 && Number.isFinite(max) ? Math.fround(max / 32767) : 0;
    sx[t] = scale;
    for (let k = 0; k < n; k++) {
      const q = scale > 0 ? Math.round(x[row + k] / scale) : 0;
      xq[t * stride + k] = q > 32767 ? 32767 : q < -32767 ? -32767 : q; // NaN stores 0
    }
    xq.fill(0, t * stride + n, (t + 1) * stride);
  }
}

/**
 * The scalar twin of matmul_q8: y[t * ys + o] = f32(total · f64(scales[o])) for t < T, o < m, with total
 * the exact integer xq[t, :] · codes[o, :] over `stride` columns. Integer sums are exact in float64 here
 * and in i32 lanes there (the chunking keeps them below 2^31), so the bits are the WASM kernel's.
 */
export function matmulQ8Js(
  y: Float32Array,
  xq: Int16Array,
  w: Q8Weight,
  T: number,
  m: number,
  ys: number,
): void {
  const S = w.stride, codes = w.codes;
  for (let t = 0; t < T; t++) {
    const xo = t * S;
    for (let o = 0; o < m; o++) {
      const wo = o * S;
      let total = 0;
      for (let k = 0; k < S; k++) total += xq[xo + k] * codes[wo + k];
      y[t * ys + o] = Math.fround(total * w.scales[o]);
    }
  }
}

/** out[t, o] = f32(y[t, o] · sx[t]) (+ b[o], float32): the activation scale and bias, after either kernel. */
export function finishQ8(
  out: Float32Array,
  outOff: number,
  y: Float32Array,
  sx: Float32Array,
  bias: Float32Array | null,
  T: number,
  m: number,
  ys: number,
  outStride: number,
): void {
  for (let t = 0; t < T; t++) {
    const s = sx[t];
    for (let o = 0; o < m; o++) {
      let v = Math.fround(y[t * ys + o] * s);
      if (bias) v = Math.fround(v + bias[o]);
      out[outOff + t * outStride + o] = v;
    }
  }
}
