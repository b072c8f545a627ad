/**
 * The scalar-JS twin of kernels/attention.wat: the same summation orders with every product and sum
 * rounded to float32 (Math.fround), so its results equal the WASM SIMD kernels' bit for bit.
 *
 * @module
 */
import { dotF32 } from "./matmul_js.ts";

const f = Math.fround;

/** out[j] = q[qOff ..+hd) · k[kOff + ctx[j] * row ..+hd) for j < n, in the matmul kernels' order. */
export function scoresJs(
  out: Float32Array,
  q: Float32Array,
  qOff: number,
  k: Float32Array,
  kOff: number,
  ctx: Int32Array,
  n: number,
  row: number,
  hd: number,
): void {
  for (let j = 0; j < n; j++) out[j] = dotF32(q, qOff, k, kOff + ctx[j] * row, hd);
}

/** out[outOff + d] = sum over j < n, in order, of p[j] * v[vOff + ctx[j] * row + d], for d < hd. */
export function mixJs(
  out: Float32Array,
  outOff: number,
  p: Float32Array,
  v: Float32Array,
  vOff: number,
  ctx: Int32Array,
  n: number,
  row: number,
  hd: number,
): void {
  for (let d = 0; d < hd; d++) out[outOff + d] = 0;
  for (let j = 0; j < n; j++) {
    const pj = p[j], vo = vOff + ctx[j] * row;
    for (let d = 0; d < hd; d++) out[outOff + d] = f(out[outOff + d] + f(pj * v[vo + d]));
  }
}
