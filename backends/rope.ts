/**
 * RoPE inverse frequencies shared by every backend, computed as Hugging Face transformers does (float32
 * arithmetic; default, `linear` and `llama3` scaling). tests/cpu_backend_test.ts checks them against
 * transformers' own values.
 *
 * @module
 */
import type { ModelConfig } from "../core/types.ts";

/**
 * RoPE inverse frequencies [headDim / 2] exactly as transformers computes them (float32 arithmetic), with
 * `linear` and `llama3` scaling.
 */
export function ropeInvFreq(cfg: ModelConfig): Float32Array {
  const dim = cfg.headDim;
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) {
    // 1.0 / (base ** (arange(0, dim, 2).float() / dim))
    const e = Math.fround((2 * j) / dim);
    inv[j] = Math.fround(1 / Math.fround(Math.pow(cfg.ropeTheta, e)));
  }
  const s = cfg.ropeScaling;
  if (s?.type === "linear") {
    for (let j = 0; j < half; j++) inv[j] = Math.fround(inv[j] / s.factor);
  } else if (s?.type === "llama3") {
    const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let j = 0; j < half; j++) {
      const f = inv[j];
      const wavelen = Math.fround((2 * Math.PI) / f);
      if (wavelen > lowFreqWavelen) {
        inv[j] = Math.fround(f / s.factor); // low frequencies: fully interpolated
      } else if (wavelen >= highFreqWavelen) {
        // medium band: smooth blend between scaled and unscaled
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        inv[j] = Math.fround((1 - smooth) * (f / s.factor) + smooth * f);
      } // high frequencies unchanged
    }
  }
  return inv;
}
