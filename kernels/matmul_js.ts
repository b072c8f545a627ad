/**
 * The scalar-JS twin of kernels/matmul.wat: the same per-output summation order with every product and
 * sum rounded to float32 (Math.fround), so its results equal the WASM SIMD kernel's bit for bit. Used
 * when WebAssembly SIMD is unavailable or forced off.
 *
 * @module
 */

const f = Math.fround;

/**
 * x[xo .. xo+n) · w[wo .. wo+n) in the kernels' fixed order: 4 lane sums over k in steps of 4, then
 * (l0 + l1) + (l2 + l3), then the scalar tail k = n4 .. n-1 in order.
 */
export function dotF32(x: Float32Array, xo: number, w: Float32Array, wo: number, n: number): number {
  const n4 = n & ~3;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let k = 0; k < n4; k += 4) {
    a0 = f(a0 + f(w[wo + k] * x[xo + k]));
    a1 = f(a1 + f(w[wo + k + 1] * x[xo + k + 1]));
    a2 = f(a2 + f(w[wo + k + 2] * x[xo + k + 2]));
    a3 = f(a3 + f(w[wo + k + 3] * x[xo + k + 3]));
  }
  let s = f(f(a0 + a1) + f(a2 + a3));
  for (let k = n4; k < n; k++) s = f(s + f(w[wo + k] * x[xo + k]));
  return s;
}

/**
 * out[t, o] = x[t, :] · w[o, :] (+ bias[o]) for t < n, o < outDim; w is [outDim, inDim] row-major.
 * Tokens go in blocks of `tokenBlock` so each weight row stays in cache across the block.
 */
export function matmulJs(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  n: number,
  inDim: number,
  outDim: number,
  tokenBlock = 8,
): void {
  for (let t0 = 0; t0 < n; t0 += tokenBlock) {
    const t1 = Math.min(n, t0 + tokenBlock);
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      for (let t = t0; t < t1; t++) {
        const s = dotF32(x, t * inDim, w, wo, inDim);
        out[t * outDim + o] = bias ? f(s + bias[o]) : s;
      }
    }
  }
}

// bf16 -> float32 is exact: the 16 bits become the top half of the float32's bits.
const widenBits = new Uint32Array(1);
const widened = new Float32Array(widenBits.buffer);
function bf16(h: number): number {
  widenBits[0] = h << 16;
  return widened[0];
}

/** dotF32 with w stored as bf16 bits (widened exactly): bitwise dotF32 on the widened w. */
export function dotBf16(x: Float32Array, xo: number, w: Uint16Array, wo: number, n: number): number {
  const n4 = n & ~3;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let k = 0; k < n4; k += 4) {
    a0 = f(a0 + f(bf16(w[wo + k]) * x[xo + k]));
    a1 = f(a1 + f(bf16(w[wo + k + 1]) * x[xo + k + 1]));
    a2 = f(a2 + f(bf16(w[wo + k + 2]) * x[xo + k + 2]));
    a3 = f(a3 + f(bf16(w[wo + k + 3]) * x[xo + k + 3]));
  }
  let s = f(f(a0 + a1) + f(a2 + a3));
  for (let k = n4; k < n; k++) s = f(s + f(bf16(w[wo + k]) * x[xo + k]));
  return s;
}

/** matmulJs with w [outDim, inDim] stored as bf16 bits: bitwise matmulJs on the widened w. */
export function matmulBf16Js(
  out: Float32Array,
  x: Float32Array,
  w: Uint16Array,
  bias: Float32Array | null,
  n: number,
  inDim: number,
  outDim: number,
  tokenBlock = 8,
): void {
  for (let t0 = 0; t0 < n; t0 += tokenBlock) {
    const t1 = Math.min(n, t0 + tokenBlock);
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      for (let t = t0; t < t1; t++) {
        const s = dotBf16(x, t * inDim, w, wo, inDim);
        out[t * outDim + o] = bias ? f(s + bias[o]) : s;
      }
    }
  }
}
