/**
 * Weight formats of the ONNX graphs (`--onnx-weights`, `--drafter-weights`), with no dependencies, so that
 * backends/mod.ts can list them without loading the graph builders.
 *
 * @module
 */

/** Weight formats of ONNX graphs (see build_target.ts BuildOptions.weights). */
export const WEIGHT_FORMATS = ["fp32", "fp16", "q4", "q8", "q4g128", "q8g128"] as const;
/** Weight storage of a graph: one of WEIGHT_FORMATS. */
export type WeightFormat = typeof WEIGHT_FORMATS[number];

/** Inputs per quantization block of MatMulNBits weights ("q4", "q8"). */
export const QUANT_BLOCK = 32;

/**
 * Bits and block size of a quantized weight format, null for the float ones. "q4" / "q8" use blocks of 32
 * (a float scale and a zero point per 32 weights; llama.cpp's Q4_0 / Q8_0 use blocks of 32 too); "q4g128" /
 * "q8g128" blocks of 128 (ONNX Runtime's own quantizer's default): 16% fewer bytes under q4, and faster on CPUs, at some
 * accuracy: on the default model, greedy next tokens agree with fp32 at 90.9% (q4) against 89.6% (q4g128)
 * over 2893 positions.
 */
export function quantization(weights: WeightFormat): { bits: 4 | 8; block: number } | null {
  switch (weights) {
    case "q4":
      return { bits: 4, block: QUANT_BLOCK };
    case "q8":
      return { bits: 8, block: QUANT_BLOCK };
    case "q4g128":
      return { bits: 4, block: 128 };
    case "q8g128":
      return { bits: 8, block: 128 };
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
