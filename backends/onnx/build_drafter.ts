/**
 * Builds the ONNX graph of one recurrent-drafter beam-search step (drafter/cpu.ts computes the same thing
 * in TS; redrafter.md sections 1-2). N = B*W beams, M = rows of the previous step's state:
 *
 *   inputs
 *     tokens       [N]    int64    last token of each beam
 *     parents      [N]    int64    row of `state` (flat b*W + parent beam) each beam continues
 *     state        [M, H] float32  the previous step's recurrent states (zeros at round start)
 *     context      [N, H] float32  the target's context hidden of each beam's row
 *     top_k        [1]    int64    k for the on-graph TopK
 *   outputs
 *     next_state   [N, H] float32  s' = SiLU(rnn_w·e + rnn_u·s + b)  (rnn)  or  e + s  (no rnn)
 *     log_probs    [N, V] float32  log_softmax(top50(logits - max)), values below the 50th largest -> -50000
 *     top_values   [N, k] float32  / top_ids [N, k] int64: TopK of log_probs (descending, ties to lower id)
 *
 * With a draft vocabulary (DrafterWeights.draftVocab, Vd token ids) the head has Vd rows, so log_probs is
 * [N, Vd] (the caller maps its columns to token ids); top_ids are token ids either way.
 *
 * The embedding table is the target's input embedding, carried as an initializer of this graph.
 *
 * @module
 */
import type { DrafterWeights } from "../../drafter/cpu.ts";
import { WARP_TOP_K } from "../../drafter/cpu.ts";
import { LOG_0 } from "../../core/sampling.ts";
import { idsAsFloat, matMulNBits, quantization, toF16Bytes, type WeightFormat } from "./build_target.ts";
import { GraphBuilder } from "./graph.ts";
import { DataType } from "./proto.ts";

/** [rows, cols] -> [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}

/**
 * Drafter weight storage: float ("fp32", "fp16" upcast on load) or block-quantized matrices ("q8", "q4",
 * "q8g128", "q4g128": com.microsoft MatMulNBits, int8 activations; see quantization()). Drafts only propose
 * tokens, which the target verifies, so a quantized drafter changes acceptance, never the generated text.
 */
export type DrafterWeightFormat = WeightFormat;

export function buildDrafterGraph(
  w: DrafterWeights,
  embedding: Float32Array,
  /** packed: one `packed` output instead of the int64 `top_ids` (WebGPU; see the target's BuildOptions). */
  opts: { weights: DrafterWeightFormat; packed?: boolean },
): GraphBuilder {
  const { hiddenSize: H, vocabSize: V, exitDim: E, rnn } = w.config;
  // Head rows: all V tokens, or a draft vocabulary of Vd (drafter/vocab.ts); outputs index head rows.
  const Vd = w.draftVocab?.length ?? V;
  if (embedding.length !== V * H) {
    throw new Error(`drafter: embedding table has ${embedding.length} values, expected V*H = ${V}*${H}`);
  }
  const g = new GraphBuilder(null);
  const weight = (name: string, dims: number[], data: Float32Array): string => {
    if (opts.weights !== "fp16") return g.f32(name, dims, data);
    return g.op("Cast", [g.weight(name, DataType.FLOAT16, dims, toF16Bytes(data))], { to: DataType.FLOAT });
  };
  const quant = quantization(opts.weights);
  /** x [.., inp] times an nn.Linear weight [out, inp]: MatMul, or MatMulNBits when quantized. */
  const project = (x: string, name: string, data: Float32Array, out: number, inp: number): string => {
    if (!quant) return g.op("MatMul", [x, weight(name, [inp, out], transpose(data, out, inp))]);
    return matMulNBits(g, x, name, data, out, inp, quant.bits, quant.block);
  };
  const silu = (x: string) => g.op("Mul", [x, g.op("Sigmoid", [x])]);

  const tokens = g.input({ name: "tokens", dataType: DataType.INT64, shape: ["beams"] });
  const parents = g.input({ name: "parents", dataType: DataType.INT64, shape: ["beams"] });
  const state = g.input({ name: "state", dataType: DataType.FLOAT, shape: ["prev", H] });
  const context = g.input({ name: "context", dataType: DataType.FLOAT, shape: ["beams", H] });
  const topK = g.input({ name: "top_k", dataType: DataType.INT64, shape: [1] });

  const emb = g.op("Gather", [weight("embed_tokens.weight", [V, H], embedding), tokens], { axis: 0 }); // [N,H]
  const prev = g.op("Gather", [state, parents], { axis: 0 }); // [N,H]
  let s: string;
  if (rnn) {
    // Reference order: silu(rnn_w(e) + rnn_u(s)), rnn_u carrying the bias.
    const u = g.op("Add", [
      project(prev, "rnn_u.weight", w.rnnU!, H, H),
      weight("rnn_u.bias", [H], w.rnnUBias!),
    ]);
    s = silu(g.op("Add", [project(emb, "rnn_w.weight", w.rnnW!, H, H), u]));
  } else {
    s = g.op("Add", [emb, prev]);
  }
  g.output(s, { name: "next_state", dataType: DataType.FLOAT, shape: ["beams", H] });

  let x = g.op("Concat", [context, s], { axis: 1 }); // [N,2H], context first
  if (w.inputProjWeight) {
    x = g.op("Add", [
      project(x, "input_proj.weight", w.inputProjWeight, E, 2 * H),
      weight("input_proj.bias", [E], w.inputProjBias!),
    ]);
  }
  for (let l = 0; l < w.resWeights.length; l++) {
    const a = g.op("Add", [
      project(x, `lm_head.${l}.linear.weight`, w.resWeights[l], E, E),
      weight(`lm_head.${l}.linear.bias`, [E], w.resBiases[l]),
    ]);
    x = g.op("Add", [x, silu(a)]);
  }
  // The head as stored ([V, E]); Gemm transposes it on the fly.
  const headName = `lm_head.${w.resWeights.length}.weight`;
  const logits = quant ? project(x, headName, w.headWeight, Vd, E) : g.op("Gemm", [
    x,
    weight(headName, [Vd, E], w.headWeight),
  ], { transB: 1 }); // [N,Vd]
  const z = g.op("Sub", [logits, g.op("ReduceMax", [logits], { axes: [-1], keepdims: 1 })]);
  // Top-50 warp: the 50th largest value (counting repeats) is the threshold; ties with it survive.
  const kk = Math.min(WARP_TOP_K, Vd);
  const [warpTop] = g.opN("TopK", [z, g.i64([kk])], 2, { axis: -1, largest: 1, sorted: 1 });
  const threshold = g.op("Slice", [warpTop, g.i64([kk - 1]), g.i64([kk]), g.i64([1])]); // [N,1]
  const warped = g.op("Where", [g.op("Less", [z, threshold]), g.f32c([LOG_0], true), z]);
  // LogSoftmax spelled out (warped's maximum is already 0): the WebGPU EP has no LogSoftmax kernel, and
  // running it on the CPU costs a GPU -> CPU map of [N,V] per step.
  const lse = g.op("Log", [g.op("ReduceSum", [g.op("Exp", [warped]), g.i64([-1])], { keepdims: 1 })]);
  const lp = g.op("Sub", [warped, lse]);
  g.output(lp, { name: "log_probs", dataType: DataType.FLOAT, shape: ["beams", Vd] });
  const [topV, topRows] = g.opN("TopK", [lp, topK], 2, { axis: -1, largest: 1, sorted: 1 });
  // Head rows -> token ids (ascending, so ties still go to the lower id).
  const vocab = w.draftVocab;
  const topI = vocab ? g.op("Gather", [g.i64(Array.from(vocab)), topRows], { axis: 0 }) : topRows;
  g.output(topV, { name: "top_values", dataType: DataType.FLOAT, shape: ["beams", "k"] });
  if (!opts.packed) {
    g.output(topI, { name: "top_ids", dataType: DataType.INT64, shape: ["beams", "k"] });
    return g;
  }
  // log_probs, top_values and top_ids (as float32, exact below 2^24) flattened into one tensor: on WebGPU
  // every output read back is its own GPU -> CPU map, so the drafter reads this one instead of three.
  const flat = (t: string) => g.op("Reshape", [t, g.i64([-1])]);
  const idsF = vocab
    ? g.op("Gather", [g.f32("draft_vocab_ids", [Vd], Float32Array.from(vocab)), topRows], { axis: 0 })
    : idsAsFloat(g, topI, V);
  const packed = g.op("Concat", [flat(lp), flat(topV), flat(idsF)], { axis: 0 });
  g.output(packed, { name: "packed", dataType: DataType.FLOAT, shape: ["packed"] });
  return g;
}
