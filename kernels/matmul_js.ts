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

// Cephes' expf constants, each an exact float32 (kernels/matmul.wat's $exp4 uses the same).
const LOG2E = 1.4426950216293335, C1 = 0.693359375, C2 = -0.00021219444170128554;
const P0 = 0.00019875691214110702, P1 = 0.001398199936375022, P2 = 0.008333452045917511;
const P3 = 0.04166579619050026, P4 = 0.1666666567325592;

/** e^x for a float32 x, step for step as matmul.wat's $exp4 lane (every step rounded to float32). */
export function expF32(x: number): number {
  x = Math.max(Math.min(x, 88), -87);
  const k = Math.floor(f(f(x * LOG2E) + 0.5));
  const r = f(f(x - f(k * C1)) - f(k * C2));
  let p = P0;
  p = f(f(p * r) + P1);
  p = f(f(p * r) + P2);
  p = f(f(p * r) + P3);
  p = f(f(p * r) + P4);
  p = f(f(p * r) + 0.5);
  p = f(f(f(p * f(r * r)) + r) + 1);
  return f(p * 2 ** k);
}

/** out[i] = (g / (1 + e^-g)) * up[i] with g = gate[i], float32 steps: bitwise matmul.wat's silu_mul. */
export function siluMulJs(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) {
    const g = gate[i];
    out[i] = f(f(g / f(1 + expF32(-g))) * up[i]);
  }
}
