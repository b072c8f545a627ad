/**
 * Weight formats of the ONNX graphs (`--onnx-weights`, `--drafter-weights`), with no dependencies, so that
 * backends/mod.ts can list them without loading the graph builders.
 *
 * @module
 */

/** Weight formats of ONNX graphs (see build_target.ts BuildOptions.weights). */
export const WEIGHT_FORMATS = ["fp32", "fp16", "q4", "q8", "q4g128", "q8g128", "q4g128h4"] as const;
/** Weight storage of a graph: one of WEIGHT_FORMATS. */
export type WeightFormat = typeof WEIGHT_FORMATS[number];

/** Inputs per quantization block of MatMulNBits weights ("q4", "q8"). */
export const QUANT_BLOCK = 32;

/**
 * Bits, block size and the target's LM-head bits of a quantized weight format, null for the float ones.
 * - "q4" / "q8": blocks of 32 (a float scale and a zero point per 32 weights; llama.cpp's Q4_0 / Q8_0 use
 *   blocks of 32 too).
 * - "q4g128" / "q8g128": blocks of 128 (ONNX Runtime's own quantizer's default): 16% fewer bytes under q4,
 *   and faster on CPUs, at some accuracy.
 * - "q4g128h4": q4g128 with the target's LM head 4-bit too (every q4 format keeps it 8-bit otherwise):
 *   1.16-1.19x faster decode on the random ~107M Llama (32000 x 768 head) on onnx-node at 1 thread, at more
 *   accuracy. Drafters quantize their head with the other matrices, so for them it is q4g128.
 * On the default model, teacher-forced over 60 held-out prompts (2940 positions), greedy next tokens agree
 * with fp32 at 91.0% (q4), 89.7% (q4g128), 86.3% (q4g128h4) and 98.6% (q8).
 */
export function quantization(
  weights: WeightFormat,
): { bits: 4 | 8; block: number; headBits: 4 | 8 } | null {
  switch (weights) {
    case "q4":
      return { bits: 4, block: QUANT_BLOCK, headBits: 8 };
    case "q8":
      return { bits: 8, block: QUANT_BLOCK, headBits: 8 };
    case "q4g128":
      return { bits: 4, block: 128, headBits: 8 };
    case "q8g128":
      return { bits: 8, block: 128, headBits: 8 };
    case "q4g128h4":
      return { bits: 4, block: 128, headBits: 4 };
    default:
      return null;
  }
}

/** `weights` itself when it is one of WEIGHT_FORMATS, else an error naming `what` (an option or a flag). */
export function checkWeightFormat(weights: string, what: string): WeightFormat {
  if (!(WEIGHT_FORMATS as readonly string[]).includes(weights)) {
    throw new Error(`${what} must be one of ${WEIGHT_FORMATS.join(", ")}; got '${weights}'`);
  }
  return weights as WeightFormat;
}

/** Bytes per weight in a graph: quantized ones hold their codes, and a float scale and a zero point per block. */
export function bytesPerWeight(weights: WeightFormat): number {
  const q = quantization(weights);
  if (!q) return weights === "fp16" ? 2 : 4;
  return q.bits / 8 + (4 + q.bits / 8) / q.block;
}
