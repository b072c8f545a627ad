/**
 * Writes the CLI test fixture tests/fixtures/models/tiny_chat/: a tiny Llama with the metaspace tokenizer
 * (and its Llama-2 chat template) from tests/fixtures/tokenizer/metaspace, plus an "oracle" drafter in
 * tests/fixtures/models/tiny_chat_drafter/ that predicts the target exactly, so the CLI tests see drafts
 * accepted (tau > 1) as well as rejected (with a random drafter).
 *
 * The target is a bigram model: o_proj and down_proj are zero, so the residual stream at a position is the
 * embedding e of its token, and logits = lm_head · RMSNorm(e) (norm weights 1), whose argmax is that of
 * lm_head · e. The drafter (rnn, exit_dim = H, no ResBlocks) computes s = SiLU(8I·e + 0·s + c) = 8e + c for a
 * large c (the sigmoid rounds to 1 in float32), input_proj = [0 | I] with bias -c gives x = 8e, and its head
 * is lm_head: drafter logits = 8 lm_head · e, sharp enough that beam search keeps the greedy chain. Weights
 * are stored in F16 (both heads round identically).
 *
 *   deno run -A tools/make_cli_fixtures.ts
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTokenizer } from "../loader/tokenizer.ts";
import { type TensorToWrite, writeSafetensors } from "../loader/safetensors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TOKENIZER = join(ROOT, "tests/fixtures/tokenizer/metaspace");
const OUT = join(ROOT, "tests/fixtures/models/tiny_chat");
const OUT_DRAFTER = join(ROOT, "tests/fixtures/models/tiny_chat_drafter");

const H = 16, I = 32, HEADS = 2, KV_HEADS = 1, HEAD_DIM = 8, MAX_POS = 1024;
const SHIFT = 40; // c above: sigmoid(40 + 8e) == 1 in float32 for |e| < 1.2
const SHARPEN = 8; // rnn_w = 8 I: drafter logits = 8 lm_head · e, a sharper Q with the same argmax

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(1234);
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const randn = (n: number, std: number) => Float32Array.from({ length: n }, () => std * normal());
const fill = (n: number, v: number) => new Float32Array(n).fill(v);

const tok = await loadTokenizer(TOKENIZER);
const V = tok.vocabSize;
const dtype = "F16" as const;
const embed = randn(V * H, 0.3);
const lmHead = randn(V * H, 0.5);
const tensors: TensorToWrite[] = [
  { name: "model.embed_tokens.weight", shape: [V, H], dtype, data: embed },
  { name: "model.layers.0.input_layernorm.weight", shape: [H], dtype, data: fill(H, 1) },
  {
    name: "model.layers.0.self_attn.q_proj.weight",
    shape: [HEADS * HEAD_DIM, H],
    dtype,
    data: randn(HEADS * HEAD_DIM * H, 0.3),
  },
  {
    name: "model.layers.0.self_attn.k_proj.weight",
    shape: [KV_HEADS * HEAD_DIM, H],
    dtype,
    data: randn(KV_HEADS * HEAD_DIM * H, 0.3),
  },
  {
    name: "model.layers.0.self_attn.v_proj.weight",
    shape: [KV_HEADS * HEAD_DIM, H],
    dtype,
    data: randn(KV_HEADS * HEAD_DIM * H, 0.3),
  },
  {
    name: "model.layers.0.self_attn.o_proj.weight",
    shape: [H, HEADS * HEAD_DIM],
    dtype,
    data: fill(H * HEADS * HEAD_DIM, 0),
  },
  { name: "model.layers.0.post_attention_layernorm.weight", shape: [H], dtype, data: fill(H, 1) },
  { name: "model.layers.0.mlp.gate_proj.weight", shape: [I, H], dtype, data: randn(I * H, 0.3) },
  { name: "model.layers.0.mlp.up_proj.weight", shape: [I, H], dtype, data: randn(I * H, 0.3) },
  { name: "model.layers.0.mlp.down_proj.weight", shape: [H, I], dtype, data: fill(H * I, 0) },
  { name: "model.norm.weight", shape: [H], dtype, data: fill(H, 1) },
  { name: "lm_head.weight", shape: [V, H], dtype, data: lmHead },
];

Deno.mkdirSync(OUT, { recursive: true });
const config = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: V,
  hidden_size: H,
  intermediate_size: I,
  num_hidden_layers: 1,
  num_attention_heads: HEADS,
  num_key_value_heads: KV_HEADS,
  head_dim: HEAD_DIM,
  max_position_embeddings: MAX_POS,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  bos_token_id: tok.bosToken!.id,
  eos_token_id: tok.eosToken!.id,
  hidden_act: "silu",
  torch_dtype: "float16",
};
Deno.writeTextFileSync(join(OUT, "config.json"), JSON.stringify(config, null, 2) + "\n");
writeSafetensors(join(OUT, "model.safetensors"), tensors, { format: "pt" });
for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
  Deno.copyFileSync(join(TOKENIZER, f), join(OUT, f));
}

// The oracle drafter.
const eye = new Float32Array(H * H);
for (let i = 0; i < H; i++) eye[i * H + i] = SHARPEN;
const proj = new Float32Array(H * 2 * H); // [E = H, 2H]: [0 | I]
for (let i = 0; i < H; i++) proj[i * 2 * H + H + i] = 1;
Deno.mkdirSync(OUT_DRAFTER, { recursive: true });
writeSafetensors(join(OUT_DRAFTER, "model.safetensors"), [
  { name: "input_proj.weight", shape: [H, 2 * H], dtype, data: proj },
  { name: "input_proj.bias", shape: [H], dtype, data: fill(H, -SHIFT) },
  { name: "lm_head.0.weight", shape: [V, H], dtype, data: lmHead },
  { name: "rnn_u.weight", shape: [H, H], dtype, data: fill(H * H, 0) },
  { name: "rnn_u.bias", shape: [H], dtype, data: fill(H, SHIFT) },
  { name: "rnn_w.weight", shape: [H, H], dtype, data: eye },
], { format: "pt" });
Deno.writeTextFileSync(
  join(OUT_DRAFTER, "config.json"),
  JSON.stringify(
    {
      model_type: "recurrent_drafting_drafter",
      hidden_size: H,
      vocab_size: V,
      exit_dim: H,
      num_draft_layers: 0,
      num_lookback_tokens: -1,
      rnn: true,
      torch_dtype: "float16",
    },
    null,
    2,
  ) + "\n",
);
console.error(`wrote ${OUT} and ${OUT_DRAFTER}`);
