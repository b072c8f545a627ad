/**
 * Target-model weights in float32, read from a checkpoint one tensor at a time straight into memory the
 * matmul kernels read (WebAssembly linear memory, reserved whole before the first tensor, or plain
 * arrays for the JS kernels), so the peak is the weights plus at most one tensor's raw bytes (bf16/f16).
 *
 * @module
 */
import type { ModelConfig } from "../../core/types.ts";
import type { Checkpoint } from "../../loader/types.ts";
import { createKernels, type KernelChoice, type Kernels, padFloats } from "../../kernels/mod.ts";

export interface LayerWeights {
  inputNorm: Float32Array; // [H]
  wq: Float32Array; // [heads*hd, H]
  wk: Float32Array; // [kvHeads*hd, H]
  wv: Float32Array; // [kvHeads*hd, H]
  wo: Float32Array; // [H, heads*hd]
  bq: Float32Array | null;
  bk: Float32Array | null;
  bv: Float32Array | null;
  bo: Float32Array | null;
  postNorm: Float32Array; // [H]
  wGate: Float32Array; // [I, H]
  wUp: Float32Array; // [I, H]
  wDown: Float32Array; // [H, I]
  bGate: Float32Array | null;
  bUp: Float32Array | null;
  bDown: Float32Array | null;
}

export interface Weights {
  embed: Float32Array; // [V, H]; packed (Kernels.pack) when it is the tied lmHead: read rows with row()
  layers: LayerWeights[];
  finalNorm: Float32Array; // [H]
  lmHead: Float32Array; // [V, H], packed; the same array as embed when tied
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

/** Reserve kernel memory for every tensor of the checkpoint, then read each one into place. */
export function loadWeights(
  ckpt: Checkpoint,
  kernels: KernelChoice = "auto",
  tokenBlock = 8,
  threads = 1,
): { weights: Weights; kernels: Kernels } {
  const c: ModelConfig = ckpt.config;
  const t = ckpt.tensors;
  const H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  let weightFloats = 0;
  for (const [, shape] of tensorShapes(c)) weightFloats += padFloats(shape.reduce((a, b) => a * b, 1));
  const k = createKernels({
    weightFloats,
    maxIn: Math.max(H, I, qDim),
    maxOut: Math.max(H, I, qDim, V),
    kernels,
    tokenBlock,
    threads,
    label: `the checkpoint ${ckpt.dir}`,
  });
  const read = (name: string, shape: number[]) =>
    t.readF32(name, shape, k.alloc(shape.reduce((a, b) => a * b, 1)));
  const embed = read("model.embed_tokens.weight", [V, H]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = p + "self_attn.", m = p + "mlp.";
    layers.push({
      inputNorm: read(p + "input_layernorm.weight", [H]),
      wq: read(a + "q_proj.weight", [qDim, H]),
      wk: read(a + "k_proj.weight", [kvDim, H]),
      wv: read(a + "v_proj.weight", [kvDim, H]),
      wo: read(a + "o_proj.weight", [H, qDim]),
      bq: c.attentionBias ? read(a + "q_proj.bias", [qDim]) : null,
      bk: c.attentionBias ? read(a + "k_proj.bias", [kvDim]) : null,
      bv: c.attentionBias ? read(a + "v_proj.bias", [kvDim]) : null,
      bo: c.outputBias ? read(a + "o_proj.bias", [H]) : null,
      postNorm: read(p + "post_attention_layernorm.weight", [H]),
      wGate: read(m + "gate_proj.weight", [I, H]),
      wUp: read(m + "up_proj.weight", [I, H]),
      wDown: read(m + "down_proj.weight", [H, I]),
      bGate: c.mlpBias ? read(m + "gate_proj.bias", [I]) : null,
      bUp: c.mlpBias ? read(m + "up_proj.bias", [I]) : null,
      bDown: c.mlpBias ? read(m + "down_proj.bias", [H]) : null,
    });
  }
  const finalNorm = read("model.norm.weight", [H]);
  const lmHead = c.tieWordEmbeddings ? embed : read("lm_head.weight", [V, H]);
  // Every matrix in the kernels' fastest layout (a no-op with the JS kernels); the embedding table then
  // too when it is the tied lm_head, so token rows are read through k.row().
  for (const L of layers) {
    k.pack(L.wq, qDim, H);
    k.pack(L.wk, kvDim, H);
    k.pack(L.wv, kvDim, H);
    k.pack(L.wo, H, qDim);
    k.pack(L.wGate, I, H);
    k.pack(L.wUp, I, H);
    k.pack(L.wDown, H, I);
  }
  k.pack(lmHead, V, H);
  return { weights: { embed, layers, finalNorm, lmHead }, kernels: k };
}
