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
  // q_proj, k_proj and v_proj stacked: [heads*hd + 2*kvHeads*hd, H], one matmul for the three (every
  // output row is still its own fixed-order sum, so the bits are those of three separate matmuls)
  wqkv: Matrix;
  bqkv: Float32Array | null; // their biases stacked the same way (Qwen2), or null
  wo: Matrix; // [H, heads*hd]
  bo: Float32Array | null;
  postNorm: Float32Array; // [H]
  wGateUp: Matrix; // gate_proj and up_proj stacked: [2I, H]
  bGateUp: Float32Array | null;
  wDown: Matrix; // [H, I]
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
 * The matrices stored stacked, per layer (or of every layer without `layer`): [q, k, v] and [gate, up],
 * as [name, shape] in stacking order.
 */
function stackedGroups(c: ModelConfig, layer?: number): [string, number[]][][] {
  const H = c.hiddenSize, I = c.intermediateSize;
  const q: number[] = [c.numHeads * c.headDim, H], kv: number[] = [c.numKvHeads * c.headDim, H];
  const groups: [string, number[]][][] = [];
  const [from, to] = layer === undefined ? [0, c.numLayers] : [layer, layer + 1];
  for (let l = from; l < to; l++) {
    const a = `model.layers.${l}.self_attn.`, m = `model.layers.${l}.mlp.`;
    groups.push(
      [[a + "q_proj.weight", q], [a + "k_proj.weight", kv], [a + "v_proj.weight", kv]],
      [[m + "gate_proj.weight", [I, H]], [m + "up_proj.weight", [I, H]]],
    );
  }
  return groups;
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
  const keep = keepBf16 === "auto" ? kernels !== "js" && wasmSimdSupported() : keepBf16;
  const isBf16 = (name: string, shape: number[]) =>
    keep && shape.length === 2 && t.info(name).dtype === "BF16";
  // Matrices stacked into one (q/k/v, gate/up) stay bf16 only if all of them are, and are padded as one.
  const groups = stackedGroups(c);
  const grouped = new Set(groups.flatMap((g) => g.map(([name]) => name)));
  const groupBf16 = (g: [string, number[]][]) => g.every(([name, shape]) => isBf16(name, shape));
  const groupFloats = (g: [string, number[]][]) => {
    const n = g.reduce((sum, [, shape]) => sum + count(shape), 0);
    return groupBf16(g) ? padBf16(n) : padFloats(n);
  };
  const weightFloats = shapes.reduce(
    (sum, [name, shape]) =>
      grouped.has(name) ? sum : sum + (isBf16(name, shape) ? padBf16 : padFloats)(count(shape)),
    0,
  ) + groups.reduce((sum, g) => sum + groupFloats(g), 0);
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
  /** The bf16 matrix `name` ([shape], checked) as raw bits into h from element `at`. */
  const readBf16Into = (name: string, shape: number[], h: Uint16Array, at: number) => {
    const info = t.info(name), n = count(shape);
    if (info.shape.join(",") !== shape.join(",")) {
      throw new Error(
        `${info.file}: tensor ${name} has shape [${info.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    t.readRaw(name, new Uint8Array(h.buffer, h.byteOffset + 2 * at, 2 * n)); // little-endian bits, in place
  };
  const readMatrix = (name: string, shape: number[]): Matrix => {
    if (!isBf16(name, shape)) return read(name, shape);
    const h = k.allocBf16(count(shape));
    readBf16Into(name, shape, h, 0);
    return h;
  };
  /** The group's matrices read into one stacked [Σ rows, cols] matrix, in order. */
  const readStacked = (g: [string, number[]][]): Matrix => {
    const total = g.reduce((sum, [, shape]) => sum + count(shape), 0);
    const bf16 = groupBf16(g);
    const stacked = bf16 ? k.allocBf16(total) : k.alloc(total);
    let at = 0;
    for (const [name, shape] of g) {
      const n = count(shape);
      if (bf16) readBf16Into(name, shape, stacked as Uint16Array, at);
      else t.readF32(name, shape, (stacked as Float32Array).subarray(at, at + n));
      at += n;
    }
    return stacked;
  };
  /** Bias vectors stacked like their matrices (float32). */
  const readBiases = (names: string[], sizes: number[]): Float32Array => {
    const b = k.alloc(sizes.reduce((a, n) => a + n, 0));
    let at = 0;
    names.forEach((name, i) => {
      t.readF32(name, [sizes[i]], b.subarray(at, at + sizes[i]));
      at += sizes[i];
    });
    return b;
  };
  const embed = readMatrix("model.embed_tokens.weight", [V, H]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = p + "self_attn.", m = p + "mlp.";
    const [qkv, gateUp] = stackedGroups(c, l);
    layers.push({
      inputNorm: read(p + "input_layernorm.weight", [H]),
      wqkv: readStacked(qkv),
      bqkv: c.attentionBias
        ? readBiases([a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"], [qDim, kvDim, kvDim])
        : null,
      wo: readMatrix(a + "o_proj.weight", [H, qDim]),
      bo: c.outputBias ? read(a + "o_proj.bias", [H]) : null,
      postNorm: read(p + "post_attention_layernorm.weight", [H]),
      wGateUp: readStacked(gateUp),
      bGateUp: c.mlpBias ? readBiases([m + "gate_proj.bias", m + "up_proj.bias"], [I, I]) : null,
      wDown: readMatrix(m + "down_proj.weight", [H, I]),
      bDown: c.mlpBias ? read(m + "down_proj.bias", [H]) : null,
    });
  }
  const finalNorm = read("model.norm.weight", [H]);
  const lmHead = c.tieWordEmbeddings ? embed : readMatrix("lm_head.weight", [V, H]);
  // Every matrix (float32 or bf16) in the kernels' fastest layout (a no-op with the JS kernels); the
  // embedding table then too when it is the tied lm_head, so token rows are read through k.row().
  const pack = (w: Matrix, rows: number, cols: number) => k.pack(w, rows, cols);
  for (const L of layers) {
    pack(L.wqkv, qDim + 2 * kvDim, H);
    pack(L.wo, H, qDim);
    pack(L.wGateUp, 2 * I, H);
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
