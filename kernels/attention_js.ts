/**
 * The scalar-JS twin of kernels/attention.wat: the same summation orders with every product and sum
 * rounded to float32 (Math.fround), so its results equal the WASM SIMD kernels' bit for bit.
 *
 * @module
 */
import type { AttentionKernels } from "./attention.ts";
import { dotF32, expF32 } from "./matmul_js.ts";

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

/**
 * p[j] = softmax(s * scale)[j] for j < n in float32 steps, as kernels/attention.wat: e^x by expF32, the sum
 * as 4 lane sums over the groups of 4, (l0 + l1) + (l2 + l3), then the tail in order.
 */
export function softmaxJs(p: Float32Array, s: Float32Array, n: number, scale: number): void {
  const sc = f(scale), n4 = n & ~3;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    p[j] = f(s[j] * sc);
    max = Math.max(max, p[j]); // NaN propagates, as f32.max
  }
  const lanes = [0, 0, 0, 0];
  for (let j = 0; j < n4; j++) {
    p[j] = expF32(f(p[j] - max));
    lanes[j & 3] = f(lanes[j & 3] + p[j]);
  }
  let sum = f(f(lanes[0] + lanes[1]) + f(lanes[2] + lanes[3]));
  for (let j = n4; j < n; j++) {
    p[j] = expF32(f(p[j] - max));
    sum = f(sum + p[j]);
  }
  for (let j = 0; j < n; j++) p[j] = f(p[j] / sum);
}

/** One token's attention, every query head, as kernels/attention.wat's attend (AttentionKernels.attend). */
export const attendJs: AttentionKernels["attend"] = (
  q,
  k,
  v,
  ctx,
  n,
  row,
  headStride,
  hd,
  heads,
  group,
  scale,
  sc,
  out,
) => {
  checkAttendScratch(sc, n);
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / group) * headStride;
    scoresJs(sc, q, h * hd, k, kv, ctx, n, row, hd);
    softmaxJs(sc, sc, n, scale);
    mixJs(out, h * hd, sc, v, kv, ctx, n, row, hd);
  }
};

/** attend's score scratch holds two heads' scores (2n floats); a shorter one is refused, not overrun. */
export function checkAttendScratch(sc: Float32Array, n: number): void {
  if (sc.length < 2 * n) {
    throw new Error(
      `kernels: attend needs ${2 * n} floats of score scratch (2 x ${n} keys), got ${sc.length}`,
    );
  }
}
