/**
 * Builds the ONNX graph of a Llama / Mistral / Qwen2 causal LM straight from its safetensors checkpoint.
 *
 * Graph interface (Optimum-style names; B = batch, S = new tokens per row, P = past slots per row,
 * N = number of requested logit rows over the whole batch):
 *
 *   inputs
 *     input_ids                    [B, S]        int64
 *     position_ids                 [B, S]        int64   RoPE positions
 *     attention_mask               [B, 1, S, P+S] float32 additive bias: 0 = may attend, -1e9 = may not.
 *                                  It encodes everything about visibility: each row's committed cache length
 *                                  (past slots at or beyond it are masked), the tree (new token i sees new
 *                                  token j only if j is i or an ancestor of i), and the sliding window
 *                                  (slots whose position is >= window behind the query's are masked).
 *     past_key_values.L.key/value  [B, kvH, P, D] float32 (P may be 0)
 *     logits_index                 [N]           int64   flat indices b*S + i of the rows whose logits are wanted
 *     top_k                        [1]           int64   k for the on-graph TopK
 *   outputs
 *     logits                       [N, V]        float32
 *     top_values / top_ids         [N, k]        float32 / int64 (descending, ties to the lower id)
 *     hidden_states                [B, S, H]     float32 final-norm hidden states of all new tokens
 *     packed_topk / packed_logits  [B*S*H + ...] float32 hidden_states, then top_values and top_ids (as
 *                                  float32; exact below 2^24) / logits, flattened into one tensor: on WebGPU
 *                                  every output read back is its own GPU -> CPU map, so one read beats three
 *                                  (`packed` graphs only, which have no top_ids)
 *     present.L.key/value          [B, kvH, S, D] float32 keys (after RoPE) / values of the NEW tokens only;
 *                                  the caller owns the cache and places them (pending slots).
 *
 * `fused` swaps standard-op subgraphs for ONNX Runtime contrib ops (SimplifiedLayerNormalization,
 * com.microsoft RotaryEmbedding) that compute the same thing.
 *
 * `attention: "gqa"` (requires `fused`) computes attention with the com.microsoft GroupQueryAttention op,
 * which reads the grouped KV heads directly (no repeat), takes Q/K/V in the packed [B, S, heads*D] layout
 * the projections produce (no transposes) and adds the tree mask as `attention_bias`. ONNX Runtime's CPU
 * kernel only accepts batch 1 when S > 1 with a past, so this graph serves batch-1 sessions. It changes
 * two things in the interface:
 *
 *   seqlens_k              [B]           int32   committed past length + S - 1 (GQA's convention)
 *   total_sequence_length  []            int32   committed past length + S
 *   attention_mask         [B, 1, S, L+S] float32 the same bias, laid out as GQA reads keys: the L committed
 *                                  slots, then the S new tokens (past slots at or beyond L are not read).
 *
 * @module
 */
import type { ModelConfig } from "../../core/types.ts";
import type { TensorStore } from "../../loader/types.ts";
import { f32ToF16Bits } from "../../loader/safetensors.ts";
import { GraphBuilder, MS_DOMAIN } from "./graph.ts";
import { DataType } from "./proto.ts";
import { ropeInvFreq } from "../rope.ts";
import { quantizeBlockwise } from "./quantize.ts";
import { QUANT_BLOCK, quantization, type WeightFormat } from "./formats.ts";

export { QUANT_BLOCK, quantization, WEIGHT_FORMATS, type WeightFormat } from "./formats.ts";

export interface BuildOptions {
  /**
   * Weight storage: "fp32"; "fp16" (stored as float16, upcast to float32 on load); "q4" / "q8" (every
   * projection and the LM head as com.microsoft MatMulNBits with 4- or 8-bit block-quantized weights,
   * blocks of 32, int8 activations (accuracy_level 4); under q4 the LM head is 8-bit; norms and the
   * embedding table stay float32); "q4g128" / "q8g128" the same with blocks of 128; "q4g128h4" q4g128 with a 4-bit LM
   * head (see quantization()).
   */
  weights: WeightFormat;
  /** Use ORT contrib ops where they keep parity. */
  fused: boolean;
  /** Attention subgraph: standard ops (any batch), or com.microsoft GroupQueryAttention (batch 1). */
  attention: "standard" | "gqa";
  /** Put weights in an external data file with this name (for models near the 2 GB protobuf limit). */
  externalFile: string | null;
  /**
   * Outputs for one read-back per run (WebGPU; default false): `packed_topk` / `packed_logits` instead of
   * the int64 `top_ids`, which the WebGPU EP would copy to the host on every run, fetched or not (each copy a
   * GPU -> CPU map). Other graphs declare `top_ids` and no packed outputs.
   */
  packed?: boolean;
}

/**
 * x [.., inp] times the nn.Linear weight w [out, inp] as a com.microsoft MatMulNBits node: w block-quantized
 * (`block` inputs per block, our own quantizer) to `bits`, with int8 activations (accuracy_level 4).
 */
export function matMulNBits(
  g: GraphBuilder,
  x: string,
  name: string,
  w: Float32Array,
  out: number,
  inp: number,
  bits: 4 | 8,
  block: number = QUANT_BLOCK,
): string {
  const q = quantizeBlockwise(w, out, inp, bits, block);
  return g.op(
    "MatMulNBits",
    [
      x,
      g.weight(`${name}.q${bits}`, DataType.UINT8, q.bDims, q.b),
      g.f32(`${name}.scales`, [q.scales.length], q.scales),
      g.weight(`${name}.zero_points`, DataType.UINT8, [q.zeroPoints.length], q.zeroPoints),
    ],
    { K: inp, N: out, bits, block_size: block, accuracy_level: 4 },
    MS_DOMAIN,
  );
}

/** Additive bias for masked attention slots. Finite so a fully masked row can never produce NaN. */
export const MASK_NEG = -1e9;

/** Bump when the graph changes, so cached graphs are rebuilt. */
export const GRAPH_VERSION = 2;

/**
 * Whether a provider's graphs read back one packed output per run (BuildOptions.packed): on WebGPU, where
 * every output read back is its own GPU -> CPU map, while token ids as float32 stay exact (below 2^24).
 */
export function packedReadback(provider: string, vocabSize: number): boolean {
  return provider === "onnx-webgpu" && vocabSize <= 2 ** 24;
}

/**
 * Token ids (int64) as float32, exact below 2^24, by a Gather from a [V] table of 0..V-1. A Cast would do,
 * but the WebGPU EP runs a Cast from int64 on the CPU, which costs a GPU -> CPU map of the ids first.
 */
export function idsAsFloat(g: GraphBuilder, ids: string, V: number): string {
  const iota = g.f32("token_id_values", [V], Float32Array.from({ length: V }, (_, i) => i));
  return g.op("Gather", [iota, ids], { axis: 0 });
}

/** Float32 -> float16 bytes. */
export function toF16Bytes(a: Float32Array): Uint8Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32ToF16Bits(a[i]);
  return new Uint8Array(out.buffer);
}

/** [rows, cols] -> [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}

export function buildTargetGraph(
  config: ModelConfig,
  tensors: TensorStore,
  opts: BuildOptions,
): GraphBuilder {
  const c = config;
  const H = c.hiddenSize, D = c.headDim, nH = c.numHeads, kvH = c.numKvHeads, I = c.intermediateSize;
  const V = c.vocabSize;
  if (nH % kvH !== 0) {
    throw new Error(`config: num_attention_heads ${nH} is not a multiple of ${kvH} kv heads`);
  }
  const gqa = opts.attention === "gqa";
  if (gqa && !opts.fused) throw new Error('buildTargetGraph: attention "gqa" needs fused contrib ops');
  const g = new GraphBuilder(opts.externalFile);

  const quant = quantization(opts.weights);
  const bits = quant?.bits ?? 0;
  /** A float weight as stored in the graph, upcast to float32 at run time when stored as fp16. */
  const weight = (name: string, dims: number[], data: Float32Array): string => {
    if (opts.weights !== "fp16") return g.f32(name, dims, data);
    const w = g.weight(name, DataType.FLOAT16, dims, toF16Bytes(data));
    return g.op("Cast", [w], { to: DataType.FLOAT });
  };
  const read = (name: string, shape: number[]) => tensors.readF32(name, shape);
  /** x [.., inp] times an nn.Linear weight w [out, inp] (transposed): MatMul, or MatMulNBits when quantized. */
  const project = (
    x: string,
    name: string,
    w: Float32Array,
    out: number,
    inp: number,
    nbits = bits,
  ): string => {
    if (nbits === 0) return g.op("MatMul", [x, weight(name, [inp, out], transpose(w, out, inp))]);
    return matMulNBits(g, x, name, w, out, inp, nbits as 4 | 8, quant!.block);
  };
  /** Row-wise concatenation of nn.Linear weights (fused projections). */
  const rows = (...parts: Float32Array[]): Float32Array => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };

  const ids = g.input({ name: "input_ids", dataType: DataType.INT64, shape: ["batch", "seq"] });
  const pos = g.input({ name: "position_ids", dataType: DataType.INT64, shape: ["batch", "seq"] });
  const mask = g.input({
    name: "attention_mask",
    dataType: DataType.FLOAT,
    shape: ["batch", 1, "seq", "total"],
  });
  const pastNames: [string, string][] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const k = g.input({
      name: `past_key_values.${l}.key`,
      dataType: DataType.FLOAT,
      shape: ["batch", kvH, "past", D],
    });
    const v = g.input({
      name: `past_key_values.${l}.value`,
      dataType: DataType.FLOAT,
      shape: ["batch", kvH, "past", D],
    });
    pastNames.push([k, v]);
  }
  const seqlensK = gqa ? g.input({ name: "seqlens_k", dataType: DataType.INT32, shape: ["batch"] }) : "";
  const totalLen = gqa ? g.input({ name: "total_sequence_length", dataType: DataType.INT32, shape: [] }) : "";
  const logitsIndex = g.input({ name: "logits_index", dataType: DataType.INT64, shape: ["n"] });
  const topK = g.input({ name: "top_k", dataType: DataType.INT64, shape: [1] });

  // Embeddings: [B, S, H]. The table stays float32/fp16 as stored; tied heads reuse it.
  const embName = "model.embed_tokens.weight";
  const embed = weight(embName, [V, H], read(embName, [V, H]));
  let x = g.op("Gather", [embed, ids], { axis: 0 });

  // RoPE tables [B, 1, S, D] (standard) from positions.
  const invFreq = g.f32("rope.inv_freq", [D / 2], ropeInvFreq(c));
  const posF = g.op("Unsqueeze", [g.op("Cast", [pos], { to: DataType.FLOAT }), g.i64([-1])]); // [B,S,1]
  const freqs = g.op("Mul", [posF, invFreq]); // [B,S,D/2]
  const emb = g.op("Concat", [freqs, freqs], { axis: -1 }); // [B,S,D]
  const cos4 = g.op("Unsqueeze", [g.op("Cos", [emb]), g.i64([1])]); // [B,1,S,D]
  const sin4 = g.op("Unsqueeze", [g.op("Sin", [emb]), g.i64([1])]);
  // Contrib RotaryEmbedding takes [max_pos, D/2] caches indexed by position_ids; fed the exact same values.
  let cosCache = "", sinCache = "";
  if (opts.fused) {
    const maxPos = c.maxPositionEmbeddings;
    const tab = ropeInvFreq(c);
    const cosT = new Float32Array(maxPos * (D / 2)), sinT = new Float32Array(maxPos * (D / 2));
    for (let p = 0; p < maxPos; p++) {
      for (let i = 0; i < D / 2; i++) {
        const a = Math.fround(p * tab[i]);
        cosT[p * (D / 2) + i] = Math.cos(a);
        sinT[p * (D / 2) + i] = Math.sin(a);
      }
    }
    cosCache = g.f32("rope.cos_cache", [maxPos, D / 2], cosT);
    sinCache = g.f32("rope.sin_cache", [maxPos, D / 2], sinT);
  }

  const rmsNorm = (input: string, wName: string): string => {
    const w = weight(wName, [H], read(wName, [H]));
    if (opts.fused) {
      return g.op("SimplifiedLayerNormalization", [input, w], { axis: -1, epsilon: { f: c.rmsNormEps } });
    }
    const variance = g.op("ReduceMean", [g.op("Mul", [input, input])], { axes: [-1], keepdims: 1 });
    const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [variance, g.f32c([c.rmsNormEps], true)])])]);
    return g.op("Mul", [g.op("Mul", [input, inv]), w]);
  };

  /** x [B,h,S,D] rotated by the RoPE tables. */
  const rope = (t: string): string => {
    const [a, b] = g.opN("Split", [t, g.i64([D / 2, D / 2])], 2, { axis: -1 });
    const rot = g.op("Concat", [g.op("Neg", [b]), a], { axis: -1 });
    return g.op("Add", [g.op("Mul", [t, cos4]), g.op("Mul", [rot, sin4])]);
  };
  /** [B,S,h*D] -> [B,S,h*D] rotated (contrib op, packed layout). */
  const packedRope = (t: string, heads: number): string =>
    g.op("RotaryEmbedding", [t, pos, cosCache, sinCache], { num_heads: heads }, MS_DOMAIN);
  /** [B,S,h*D] -> [B,h,S,D]. */
  const toHeads = (t: string, heads: number): string =>
    g.op("Transpose", [g.op("Reshape", [t, g.i64([0, 0, heads, D])])], { perm: [0, 2, 1, 3] });
  /** [B,S,h*D] -> [B,h,S,D] with RoPE, via the contrib op on the packed layout when fused. */
  const headsRope = (t: string, heads: number): string =>
    opts.fused ? toHeads(packedRope(t, heads), heads) : rope(toHeads(t, heads));

  const scale = g.f32c([1 / Math.sqrt(D)], true);
  const qkvOut = (nH + 2 * kvH) * D;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    // Fused QKV projection: q, k and v rows stacked, [(nH + 2 kvH) D, H].
    const wqkv = rows(
      read(`${p}.self_attn.q_proj.weight`, [nH * D, H]),
      read(`${p}.self_attn.k_proj.weight`, [kvH * D, H]),
      read(`${p}.self_attn.v_proj.weight`, [kvH * D, H]),
    );
    let qkv = project(h, `${p}.self_attn.qkv_proj.weight`, wqkv, qkvOut, H);
    if (c.attentionBias) {
      const b = new Float32Array(qkvOut);
      b.set(read(`${p}.self_attn.q_proj.bias`, [nH * D]), 0);
      b.set(read(`${p}.self_attn.k_proj.bias`, [kvH * D]), nH * D);
      b.set(read(`${p}.self_attn.v_proj.bias`, [kvH * D]), (nH + kvH) * D);
      qkv = g.op("Add", [qkv, weight(`${p}.self_attn.qkv_proj.bias`, [qkvOut], b)]);
    }
    const [q0, k0, v0] = g.opN("Split", [qkv, g.i64([nH * D, kvH * D, kvH * D])], 3, { axis: -1 });
    let merged: string; // [B,S,nH*D]
    if (gqa) {
      const q = packedRope(g.op("Mul", [q0, scale]), nH); // pre-scaled, so GQA's scale is 1
      const k = packedRope(k0, kvH);
      g.output(toHeads(k, kvH), {
        name: `present.${l}.key`,
        dataType: DataType.FLOAT,
        shape: ["batch", kvH, "seq", D],
      });
      g.output(toHeads(v0, kvH), {
        name: `present.${l}.value`,
        dataType: DataType.FLOAT,
        shape: ["batch", kvH, "seq", D],
      });
      // GQA's own present outputs (past + new) are unused, but must be declared: without them ORT 1.30
      // reads the past wrongly.
      [merged] = g.opN(
        "GroupQueryAttention",
        [
          q,
          k,
          v0,
          pastNames[l][0],
          pastNames[l][1],
          seqlensK,
          totalLen,
          "",
          "",
          "",
          mask,
        ],
        3,
        { num_heads: nH, kv_num_heads: kvH, scale: { f: 1 } },
        MS_DOMAIN,
      );
    } else {
      const q = headsRope(g.op("Mul", [q0, scale]), nH); // [B,nH,S,D], pre-scaled
      const k = headsRope(k0, kvH); // [B,kvH,S,D]
      const v = toHeads(v0, kvH);
      g.output(k, { name: `present.${l}.key`, dataType: DataType.FLOAT, shape: ["batch", kvH, "seq", D] });
      g.output(v, { name: `present.${l}.value`, dataType: DataType.FLOAT, shape: ["batch", kvH, "seq", D] });
      const kAll = g.op("Concat", [pastNames[l][0], k], { axis: 2 }); // [B,kvH,T,D]
      const vAll = g.op("Concat", [pastNames[l][1], v], { axis: 2 });
      // Grouped heads: query heads kv*g .. kv*g+g-1 share kv head kv, so [B,nH,S,D] -> [B,kvH,g*S,D].
      const qg = g.op("Reshape", [q, g.i64([0, kvH, -1, D])]);
      const scores = g.op("MatMul", [qg, g.op("Transpose", [kAll], { perm: [0, 1, 3, 2] })]); // [B,kvH,gS,T]
      const biased = g.op("Add", [g.op("Reshape", [scores, g.i64([0, nH, -1, 0])]), mask]); // [B,nH,S,T]
      const probs = g.op("Reshape", [g.op("Softmax", [biased], { axis: -1 }), g.i64([0, kvH, -1, 0])]);
      const ctx = g.op("Reshape", [g.op("MatMul", [probs, vAll]), g.i64([0, nH, -1, D])]); // [B,nH,S,D]
      merged = g.op("Reshape", [g.op("Transpose", [ctx], { perm: [0, 2, 1, 3] }), g.i64([0, 0, -1])]);
    }
    const oName = `${p}.self_attn.o_proj.weight`;
    let attn = project(merged, oName, read(oName, [H, nH * D]), H, nH * D);
    if (c.outputBias) {
      const name = `${p}.self_attn.o_proj.bias`;
      attn = g.op("Add", [attn, weight(name, [H], read(name, [H]))]);
    }
    x = g.op("Add", [x, attn]);

    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const wgu = rows(read(`${p}.mlp.gate_proj.weight`, [I, H]), read(`${p}.mlp.up_proj.weight`, [I, H]));
    let gu = project(h2, `${p}.mlp.gate_up_proj.weight`, wgu, 2 * I, H);
    if (c.mlpBias) {
      const b = new Float32Array(2 * I);
      b.set(read(`${p}.mlp.gate_proj.bias`, [I]), 0);
      b.set(read(`${p}.mlp.up_proj.bias`, [I]), I);
      gu = g.op("Add", [gu, weight(`${p}.mlp.gate_up_proj.bias`, [2 * I], b)]);
    }
    const [gate, up] = g.opN("Split", [gu, g.i64([I, I])], 2, { axis: -1 });
    const act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up]);
    const downName = `${p}.mlp.down_proj.weight`;
    let down = project(act, downName, read(downName, [H, I]), H, I);
    if (c.mlpBias) {
      const name = `${p}.mlp.down_proj.bias`;
      down = g.op("Add", [down, weight(name, [H], read(name, [H]))]);
    }
    x = g.op("Add", [x, down]);
  }

  const hidden = rmsNorm(x, "model.norm.weight");
  g.output(hidden, { name: "hidden_states", dataType: DataType.FLOAT, shape: ["batch", "seq", H] });

  // Logits only for the requested rows: Gemm with transB uses the [V, H] table as stored (shared when tied).
  const wanted = g.op("Gather", [g.op("Reshape", [hidden, g.i64([-1, H])]), logitsIndex], { axis: 0 }); // [N,H]
  const tied = c.tieWordEmbeddings || !tensors.has("lm_head.weight");
  const headName = tied ? embName : "lm_head.weight";
  let logits: string;
  if (bits !== 0) {
    // The LM head stays 8-bit under q4: its errors reach the logits directly (as llama.cpp's Q4_K_M keeps
    // output.weight at higher precision).
    logits = project(wanted, `${headName}.head`, read(headName, [V, H]), V, H, quant!.headBits);
  } else {
    const head = tied ? embed : weight("lm_head.weight", [V, H], read("lm_head.weight", [V, H]));
    logits = g.op("Gemm", [wanted, head], { transB: 1 });
  }
  g.output(logits, { name: "logits", dataType: DataType.FLOAT, shape: ["n", V] });
  const [topV, topI] = g.opN("TopK", [logits, topK], 2, { axis: -1, largest: 1, sorted: 1 });
  g.output(topV, { name: "top_values", dataType: DataType.FLOAT, shape: ["n", "k"] });
  if (!opts.packed) {
    g.output(topI, { name: "top_ids", dataType: DataType.INT64, shape: ["n", "k"] });
    return g;
  }

  // Everything JS reads back in one tensor (see the header): a map costs about 11 ms under Deno's WebGPU.
  const flat = (t: string) => g.op("Reshape", [t, g.i64([-1])]);
  const hiddenFlat = flat(hidden);
  const packedTopK = g.op("Concat", [hiddenFlat, flat(topV), flat(idsAsFloat(g, topI, V))], { axis: 0 });
  g.output(packedTopK, { name: "packed_topk", dataType: DataType.FLOAT, shape: ["packed_topk"] });
  const packedLogits = g.op("Concat", [hiddenFlat, flat(logits)], { axis: 0 });
  g.output(packedLogits, { name: "packed_logits", dataType: DataType.FLOAT, shape: ["packed_logits"] });
  return g;
}
