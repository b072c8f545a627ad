/**
 * Block-wise weight quantization for ONNX Runtime's com.microsoft MatMulNBits: each row of a [N, K] weight
 * (nn.Linear layout: N outputs of K inputs) is cut into blocks of `block` inputs; a block keeps `bits`-bit
 * codes q with its own float scale and zero point, w ≈ (q - zp) · scale.
 *
 * Layout (what MatMulNBits reads): B is uint8 [N, blocks, block·bits/8], codes in input order, two 4-bit
 * codes per byte low nibble first; scales float32 [N·blocks]; zero points uint8, for 4 bits packed two per
 * byte per row ([N, ceil(blocks/2)]), for 8 bits one per block. The last block of a row is padded with
 * codes equal to its zero point (a zero weight) when K is not a multiple of the block.
 *
 * Asymmetric min/max per block, with 0 always representable (as ONNX Runtime's own quantizer does).
 *
 * @module
 */

export interface BlockQuantized {
  bits: 4 | 8;
  block: number;
  /** Codes, uint8 [N, blocks, block * bits / 8]. */
  b: Uint8Array;
  bDims: [number, number, number];
  /** float32 [N * blocks]. */
  scales: Float32Array;
  /** uint8, [N, ceil(blocks / 2)] for 4 bits, [N * blocks] for 8. */
  zeroPoints: Uint8Array;
}

export function quantizeBlockwise(
  w: Float32Array,
  N: number,
  K: number,
  bits: 4 | 8,
  block: number,
): BlockQuantized {
  if (w.length !== N * K) throw new Error(`quantizeBlockwise: ${w.length} values, expected ${N} x ${K}`);
  if (block < 16 || (block & (block - 1)) !== 0) {
    throw new Error(`quantizeBlockwise: block ${block} must be a power of two >= 16`);
  }
  const qmax = (1 << bits) - 1;
  const blocks = Math.ceil(K / block);
  const blob = (block * bits) / 8;
  const zpRow = bits === 4 ? Math.ceil(blocks / 2) : blocks;
  const b = new Uint8Array(N * blocks * blob);
  const scales = new Float32Array(N * blocks);
  const zeroPoints = new Uint8Array(N * zpRow);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < blocks; j++) {
      const k0 = j * block, k1 = Math.min(K, k0 + block);
      let lo = 0, hi = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[n * K + k];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const scale = hi > lo ? Math.fround((hi - lo) / qmax) : 1;
      const zp = Math.min(qmax, Math.max(0, Math.round(-lo / scale)));
      scales[n * blocks + j] = scale;
      if (bits === 4) zeroPoints[n * zpRow + (j >> 1)] |= zp << ((j & 1) * 4);
      else zeroPoints[n * zpRow + j] = zp;
      const base = (n * blocks + j) * blob;
      for (let i = 0; i < block; i++) {
        const k = k0 + i;
        const q = k < k1 ? Math.min(qmax, Math.max(0, Math.round(w[n * K + k] / scale) + zp)) : zp;
        if (bits === 4) b[base + (i >> 1)] |= q << ((i & 1) * 4);
        else b[base + i] = q;
      }
    }
  }
  return { bits, block, b, bDims: [N, blocks, blob], scales, zeroPoints };
}

/** The float weights a BlockQuantized stands for, [N, K] (tests and error reports). */
export function dequantizeBlockwise(q: BlockQuantized, K: number): Float32Array {
  const [N, blocks, blob] = q.bDims;
  const zpRow = q.bits === 4 ? Math.ceil(blocks / 2) : blocks;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < blocks; j++) {
      const zp = q.bits === 4
        ? (q.zeroPoints[n * zpRow + (j >> 1)] >> ((j & 1) * 4)) & 15
        : q.zeroPoints[n * zpRow + j];
      const scale = q.scales[n * blocks + j];
      for (let i = 0; i < q.block && j * q.block + i < K; i++) {
        const byte = q.b[(n * blocks + j) * blob + (q.bits === 4 ? i >> 1 : i)];
        const code = q.bits === 4 ? (byte >> ((i & 1) * 4)) & 15 : byte;
        out[n * K + j * q.block + i] = (code - zp) * scale;
      }
    }
  }
  return out;
}
