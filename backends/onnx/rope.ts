/**
 * RoPE inverse frequencies, as Hugging Face computes them (default, linear and llama3 scaling).
 *
 * @module
 */
import type { ModelConfig } from "../../core/types.ts";

/** [D/2] inverse frequencies, float32 like torch. */
export function ropeInvFreq(config: ModelConfig): Float32Array {
  const d = config.headDim;
  const half = d / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // torch: 1 / base ** (arange(0, d, 2).float() / d), computed in float32.
    const exponent = Math.fround((2 * i) / d);
    inv[i] = Math.fround(1 / Math.fround(Math.pow(config.ropeTheta, exponent)));
  }
  const s = config.ropeScaling;
  if (s === null) return inv;
  if (s.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] = Math.fround(inv[i] / s.factor);
    return inv;
  }
  // llama3: long wavelengths are divided by the factor, short ones kept, the band between interpolated.
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowFreqWavelen) inv[i] = Math.fround(inv[i] / s.factor);
    else if (wavelen >= highFreqWavelen) {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
        (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = Math.fround((1 - smooth) * inv[i] / s.factor + smooth * inv[i]);
    }
  }
  return inv;
}
