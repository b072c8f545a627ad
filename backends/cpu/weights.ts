/**
 * Target-model weights, read from a checkpoint one tensor at a time straight into memory the matmul kernels
 * read (WebAssembly linear memory, reserved whole before the first tensor, or plain arrays for the JS
 * kernels), so the peak is the weights plus at most one tensor's raw bytes. Matrices stored as bf16 stay
 * bf16 (half the memory and the bytes a step reads; the kernels widen them exactly, so results are those of
 * the float32 widening); everything else is float32.
 *
 * @module
 */
import type { ModelConfig } from "../../core/types.ts";
import type { Checkpoint } from "../../loader/types.ts";
import {
  createKernels,
  type KernelChoice,
  type Kernels,
  padBf16,
  padFloats,
  wasmSimdSupported,
} from "../../kernels/mod.ts";
import { buildHeadScreen, type HeadScreen, headScreenFloats } from "./head_screen.ts";

/** A weight matrix: float32, or bf16 bits (the top halves of float32s) as the checkpoint stored it. */
export type Matrix = Float32Array | Uint16Array;

export interface LayerWeights {
  inputNorm: Float32Array; // [H]
  wq: Matrix; // [heads*hd, H]
  wk: Matrix; // [kvHeads*hd, H]
  wv: Matrix; // [kvHeads*hd, H]
  wo: Matrix; // [H, heads*hd]
  bq: Float32Array | null;
  bk: Float32Array | null;
  bv: Float32Array | null;
  bo: Float32Array | null;
  postNorm: Float32Array; // [H]
  wGate: Matrix; // [I, H]
  wUp: Matrix; // [I, H]
  wDown: Matrix; // [H, I]
  bGate: Float32Array | null;
  bUp: Float32Array | null;
  bDown: Float32Array | null;
}

export interface Weights {
  embed: Matrix; // [V, H]; packed (Kernels.pack) when it is the tied lmHead: read rows with embedRow()
  layers: LayerWeights[];
  finalNorm: Float32Array; // [H]
  lmHead: Matrix; // [V, H], packed when float32; the same array as embed when tied
  headScreen: HeadScreen | null; // int8 screen for exact top-k logits (head_screen.ts), or null
}

/** The checkpoint's tensors we read, with their shapes (the tied lm_head is not a tensor of its own). */
function tensorShapes(c: ModelConfig): [string, number[]][] {
  const H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  const list: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = p + "self_attn.", m = p + "mlp.";
    list.push(
      [p + "input_layernorm.weight", [H]],
      [a + "q_proj.weight", [qDim, H]],
      [a + "k_proj.weight", [kvDim, H]],
      [a + "v_proj.weight", [kvDim, H]],
      [a + "o_proj.weight", [H, qDim]],
      [p + "post_attention_layernorm.weight", [H]],
      [m + "gate_proj.weight", [I, H]],
      [m + "up_proj.weight", [I, H]],
      [m + "down_proj.weight", [H, I]],
    );
    if (c.attentionBias) {
      list.push([a + "q_proj.bias", [qDim]], [a + "k_proj.bias", [kvDim]], [a + "v_proj.bias", [kvDim]]);
    }
    if (c.outputBias) list.push([a + "o_proj.bias", [H]]);
    if (c.mlpBias) {
      list.push([m + "gate_proj.bias", [I]], [m + "up_proj.bias", [I]], [m + "down_proj.bias", [H]]);
    }
  }
  list.push(["model.norm.weight", [H]]);
  if (!c.tieWordEmbeddings) list.push(["lm_head.weight", [V, H]]);
  return list;
}

/**
 * Whether bf16 matrices stay bf16 in memory: "auto" (default) keeps them with the WASM kernels, whose bf16
 * row pairs read half the bytes (one token 1.3-1.5x faster than float32 on the 16M / 100M models; 2-8
 * tokens within 9% either way), and widens them for the JS kernels; true / false force it. The results
 * are bitwise the same either way.
 */
export type KeepBf16 = "auto" | boolean;

/**
 * Reserve kernel memory for every tensor of the checkpoint, then read each one into place; with
 * `screenHead`, also an int8 copy of the LM head that top-k requests screen with (head_screen.ts).
 */
export function loadWeights(
  ckpt: Checkpoint,
  kernels: KernelChoice = "auto",
  tokenBlock = 8,
  threads = 1,
  keepBf16: KeepBf16 = "auto",
  screenHead = true,
): { weights: Weights; kernels: Kernels } {
  const c: ModelConfig = ckpt.config;
  const t = ckpt.tensors;
  const H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  // Matrices stored as bf16 may stay bf16 (exactly widened by the kernels); vectors, other dtypes: float32.
  const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const shapes = tensorShapes(c);
  const f32Floats = shapes.reduce((sum, [, shape]) => sum + padFloats(count(shape)), 0);
  const keep = keepBf16 === "auto" ? kernels !== "js" && wasmSimdSupported() : keepBf16;
  const isBf16 = (name: string, shape: number[]) =>
    keep && shape.length === 2 && t.info(name).dtype === "BF16";
  const weightFloats = keep
    ? shapes.reduce(
      (sum, [name, shape]) => sum + (isBf16(name, shape) ? padBf16 : padFloats)(count(shape)),
      0,
    )
    : f32Floats;
  const k = createKernels({
    weightFloats: weightFloats + (screenHead ? headScreenFloats(V, H) : 0),
    maxIn: Math.max(H, I, qDim),
    maxOut: Math.max(H, I, qDim, V),
    kernels,
    tokenBlock,
    threads,
    label: `the checkpoint ${ckpt.dir}`,
  });
  const read = (name: string, shape: number[]) => t.readF32(name, shape, k.alloc(count(shape)));
  const readMatrix = (name: string, shape: number[]): Matrix => {
    if (!isBf16(name, shape)) return read(name, shape);
    const info = t.info(name), n = count(shape);
    if (info.shape.join(",") !== shape.join(",")) {
      throw new Error(
        `${info.file}: tensor ${name} has shape [${info.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    const h = k.allocBf16(n);
    t.readRaw(name, new Uint8Array(h.buffer, h.byteOffset, 2 * n)); // little-endian bits, straight in place
    return h;
  };
  const embed = readMatrix("model.embed_tokens.weight", [V, H]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = p + "self_attn.", m = p + "mlp.";
    layers.push({
      inputNorm: read(p + "input_layernorm.weight", [H]),
      wq: readMatrix(a + "q_proj.weight", [qDim, H]),
      wk: readMatrix(a + "k_proj.weight", [kvDim, H]),
      wv: readMatrix(a + "v_proj.weight", [kvDim, H]),
      wo: readMatrix(a + "o_proj.weight", [H, qDim]),
      bq: c.attentionBias ? read(a + "q_proj.bias", [qDim]) : null,
      bk: c.attentionBias ? read(a + "k_proj.bias", [kvDim]) : null,
      bv: c.attentionBias ? read(a + "v_proj.bias", [kvDim]) : null,
      bo: c.outputBias ? read(a + "o_proj.bias", [H]) : null,
      postNorm: read(p + "post_attention_layernorm.weight", [H]),
      wGate: readMatrix(m + "gate_proj.weight", [I, H]),
      wUp: readMatrix(m + "up_proj.weight", [I, H]),
      wDown: readMatrix(m + "down_proj.weight", [H, I]),
      bGate: c.mlpBias ? read(m + "gate_proj.bias", [I]) : null,
      bUp: c.mlpBias ? read(m + "up_proj.bias", [I]) : null,
      bDown: c.mlpBias ? read(m + "down_proj.bias", [H]) : null,
    });
  }
  const finalNorm = read("model.norm.weight", [H]);
  const lmHead = c.tieWordEmbeddings ? embed : readMatrix("lm_head.weight", [V, H]);
  // Every matrix (float32 or bf16) in the kernels' fastest layout (a no-op with the JS kernels); the
  // embedding table then too when it is the tied lm_head, so token rows are read through k.row().
  const pack = (w: Matrix, rows: number, cols: number) => k.pack(w, rows, cols);
  for (const L of layers) {
    pack(L.wq, qDim, H);
    pack(L.wk, kvDim, H);
    pack(L.wv, kvDim, H);
    pack(L.wo, H, qDim);
    pack(L.wGate, I, H);
    pack(L.wUp, I, H);
    pack(L.wDown, H, I);
  }
  pack(lmHead, V, H);
  const headScreen = screenHead ? buildHeadScreen(k, lmHead, V, H) : null;
  return { weights: { embed, layers, finalNorm, lmHead, headScreen }, kernels: k };
}

/** w as a plain row-major float32 array ([rows, cols]): itself when it is one already. */
export function plainMatrix(k: Kernels, w: Matrix, rows: number, cols: number): Float32Array {
  if (w instanceof Float32Array) return k.unpacked(w, rows, cols);
  const plain = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) k.row(w, r, cols, plain, r * cols); // bf16 widened exactly
  return plain;
}

/** out = x · Wᵀ (+ bias) for n tokens, W float32 or bf16 (Kernels.matmul / matmulBf16). */
export function matmulAny(
  k: Kernels,
  out: Float32Array,
  x: Float32Array,
  w: Matrix,
  bias: Float32Array | null,
  n: number,
  inDim: number,
  outDim: number,
): void {
  if (w instanceof Float32Array) k.matmul(out, x, w, bias, n, inDim, outDim);
  else k.matmulBf16(out, x, w, bias, n, inDim, outDim);
}
