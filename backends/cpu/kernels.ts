/**
 * Float32 kernels of the CPU reference backend other than the matmul, attention and SwiGLU's activation
 * (which live in kernels/, as WASM SIMD with bit-identical JS twins), llama2.c style: plain loops over typed
 * arrays, sums accumulated in float64 (JS numbers) and stored as float32. No allocation inside any of them.
 *
 * @module
 */

/**
 * out[t, :] = x[t, :] / rms(x[t, :]) * weight, for t < n (rows of `dim`). `out` may alias `x`.
 */
export function rmsnorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  n: number,
  dim: number,
  eps: number,
): void {
  for (let t = 0; t < n; t++) {
    const off = t * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[off + i] * x[off + i];
    // transformers: x * rsqrt(mean(x^2) + eps), in float32, then weight * that.
    const scale = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    for (let i = 0; i < dim; i++) out[off + i] = weight[i] * Math.fround(x[off + i] * scale);
  }
}

/**
 * cos / sin of the RoPE angles of position pos into cos[at + j], sin[at + j] for j < invFreq.length (float32,
 * as torch: angle = float32 position x float32 frequency). Computed once per token and used by every layer.
 */
export function ropeTable(
  pos: number,
  invFreq: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  at: number,
) {
  for (let j = 0; j < invFreq.length; j++) {
    const angle = Math.fround(pos * invFreq[j]);
    cos[at + j] = Math.cos(angle);
    sin[at + j] = Math.sin(angle);
  }
}

/**
 * Rotate `heads` heads of vector v (at offset off) by the angles at cos[at ..], sin[at ..] (ropeTable),
 * rotate_half convention: for j < d/2, (v[j], v[j + d/2]) -> (v[j] cos - v[j + d/2] sin, v[j + d/2] cos +
 * v[j] sin).
 */
export function rope(
  v: Float32Array,
  off: number,
  heads: number,
  headDim: number,
  cos: Float32Array,
  sin: Float32Array,
  at: number,
): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const base = off + h * headDim;
    for (let j = 0; j < half; j++) {
      const a = v[base + j], b = v[base + j + half], c = cos[at + j], s = sin[at + j];
      v[base + j] = a * c - b * s;
      v[base + j + half] = b * c + a * s;
    }
  }
}
