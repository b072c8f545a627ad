/**
 * Autoregressive decode speed per ONNX provider vs the pure-TS CPU reference, on a random Llama of about
 * 100M parameters (timing only: weights are random).
 *
 *   deno run -A --unstable-webgpu tools/bench_onnx.ts [--providers onnx-node,onnx-wasm,cpu] [--tokens 32]
 *     [--prompt 32] [--threads N] [--weights fp32,q4,...] [--rounds 3] [--dir .cache/bench-llama-100m]
 *     [--batch 1]
 *
 * `cpu` is the CPU reference with its default kernels (WebAssembly SIMD), `cpu:js` the same backend on its
 * scalar TypeScript kernels (the same bits, no WebAssembly); ratios are printed against each one present.
 * A provider may name its attention graph: `onnx-node:gqa`, `onnx-node:standard` (default: auto). Each ONNX
 * provider runs once per --weights format (one of backends/onnx/formats.ts WEIGHT_FORMATS). All models are
 * loaded first; then --rounds rounds run each in turn (200 ms apart, so that the one before has stopped
 * spinning), and the medians are compared, so that the drift of a shared machine falls on every model alike.
 *
 * `benchDecode` is exported for other benches.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import type { TargetModel } from "../core/types.ts";
import { writeSafetensors } from "../loader/safetensors.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, type ProviderName, PROVIDERS } from "../backends/onnx/mod.ts";
import { checkWeightFormat } from "../backends/onnx/formats.ts";

/** Pause between two models' timings, so that the one before has gone quiet (see the rounds below). */
const SETTLE_MS = 200;

export interface DecodeTiming {
  backend: string;
  prefillMs: number;
  /** Decode tokens per second per row (one forward + commit per token). */
  tokensPerSec: number;
}

/** Prefill `prompt` random tokens, then decode `tokens` greedy steps (topk k=1) in every row. */
export async function benchDecode(
  model: TargetModel,
  opts: { prompt: number; tokens: number; batch?: number },
): Promise<DecodeTiming> {
  const B = opts.batch ?? 1;
  const V = model.config.vocabSize;
  const s = model.createSession(B, opts.prompt + opts.tokens + 1);
  const rows = Array.from({ length: B }, (_, b) => {
    const tokens = Int32Array.from({ length: opts.prompt }, (_, i) => (b * 7919 + i * 104729) % V);
    return {
      tokens,
      positions: Int32Array.from(tokens, (_, i) => i),
      logitIndices: Int32Array.of(opts.prompt - 1),
    };
  });
  let t0 = performance.now();
  let out = await s.forward({ rows, logits: { kind: "topk", k: 1 } });
  s.commit(rows.map(() => null));
  const prefillMs = performance.now() - t0;
  t0 = performance.now();
  for (let step = 0; step < opts.tokens; step++) {
    const lens = s.lengths();
    const next = rows.map((_, b) => ({
      tokens: Int32Array.of(out.topIds![b][0]),
      positions: Int32Array.of(lens[b]),
      logitIndices: Int32Array.of(0),
    }));
    out = await s.forward({ rows: next, logits: { kind: "topk", k: 1 } });
    s.commit(next.map(() => null));
    for (let b = 0; b < B; b++) rows[b] = next[b];
  }
  const ms = performance.now() - t0;
  s.dispose();
  return { backend: model.backend, prefillMs, tokensPerSec: (opts.tokens / ms) * 1000 };
}

/** A random Llama checkpoint: H 768, 8 layers, 12 heads (4 kv), I 2048, V 32000: ~107M parameters. */
export function writeRandomLlama(dir: string): void {
  const H = 768, L = 8, nH = 12, kvH = 4, D = 64, I = 2048, V = 32000;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(
    `${dir}/config.json`,
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: H,
      intermediate_size: I,
      num_hidden_layers: L,
      num_attention_heads: nH,
      num_key_value_heads: kvH,
      head_dim: D,
      vocab_size: V,
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 2,
      torch_dtype: "float32",
    }),
  );
  let seed = 12345;
  const rand = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      a[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
    }
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const t: { name: string; shape: number[]; data: Float32Array }[] = [];
  t.push({ name: "model.embed_tokens.weight", shape: [V, H], data: rand(V * H, 0.05) });
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    t.push({ name: `${p}.input_layernorm.weight`, shape: [H], data: ones(H) });
    t.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H], data: ones(H) });
    t.push({ name: `${p}.self_attn.q_proj.weight`, shape: [nH * D, H], data: rand(nH * D * H, 0.05) });
    t.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kvH * D, H], data: rand(kvH * D * H, 0.05) });
    t.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kvH * D, H], data: rand(kvH * D * H, 0.05) });
    t.push({ name: `${p}.self_attn.o_proj.weight`, shape: [H, nH * D], data: rand(H * nH * D, 0.05) });
    t.push({ name: `${p}.mlp.gate_proj.weight`, shape: [I, H], data: rand(I * H, 0.05) });
    t.push({ name: `${p}.mlp.up_proj.weight`, shape: [I, H], data: rand(I * H, 0.05) });
    t.push({ name: `${p}.mlp.down_proj.weight`, shape: [H, I], data: rand(H * I, 0.03) });
  }
  t.push({ name: "model.norm.weight", shape: [H], data: ones(H) });
  t.push({ name: "lm_head.weight", shape: [V, H], data: rand(V * H, 0.05) });
  writeSafetensors(`${dir}/model.safetensors`, t);
}

if (import.meta.main) {
  const { values } = toolArgs(import.meta.url, {
    options: {
      providers: { type: "string", default: "onnx-node,onnx-wasm,cpu" },
      tokens: { type: "string", default: "32" },
      prompt: { type: "string", default: "32" },
      batch: { type: "string", default: "1" },
      threads: { type: "string" },
      weights: { type: "string", default: "fp32" },
      rounds: { type: "string", default: "3" },
      dir: { type: "string", default: ".cache/bench-llama-100m" },
    },
  });
  const weightList = values.weights!.split(",").map((w) => checkWeightFormat(w, "--weights"));
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--rounds must be an integer >= 1, got ${values.rounds}`);
  }
  const dir = values.dir!;
  try {
    Deno.statSync(`${dir}/model.safetensors`);
  } catch {
    console.log(`writing a random ~107M-parameter Llama to ${dir}`);
    writeRandomLlama(dir);
  }
  const ckpt = await loadCheckpoint(dir);
  const opts = { prompt: Number(values.prompt), tokens: Number(values.tokens), batch: Number(values.batch) };
  const threads = values.threads ? Number(values.threads) : undefined;
  // Every model is loaded first, then the rounds run them in turn: the machine's drift hits all alike.
  const models: { label: string; model: TargetModel }[] = [];
  for (const name of values.providers!.split(",")) {
    const isCpu = name === "cpu" || name === "cpu:js";
    for (const weights of isCpu ? ["fp32" as const] : weightList) {
      const t0 = performance.now();
      let model: TargetModel;
      if (isCpu) {
        const spec = "../backends/cpu/mod.ts"; // not a literal: the CPU backend may be absent in this checkout
        const cpu = await import(spec);
        model = cpu.createCpuModel(ckpt, { threads, kernels: name === "cpu:js" ? "js" : "auto" });
      } else if ((PROVIDERS as string[]).includes(name.split(":")[0])) {
        const [provider, attention] = name.split(":");
        if (attention !== undefined && !["auto", "gqa", "standard"].includes(attention)) {
          throw new Error(`--providers: ${name}: attention must be auto, gqa or standard`);
        }
        model = await createOnnxModel(ckpt, {
          provider: provider as ProviderName,
          threads,
          weights,
          attention: attention as "auto" | "gqa" | "standard" | undefined,
        });
      } else {
        throw new Error(`--providers: unknown backend ${name} (use cpu, cpu:js or ${PROVIDERS.join(", ")})`);
      }
      const label = isCpu ? name : `${name} ${weights}`;
      console.log(`${label.padEnd(28)} load ${(performance.now() - t0).toFixed(0).padStart(6)} ms`);
      models.push({ label, model });
    }
  }
  const tps = models.map(() => [] as number[]);
  const prefill = models.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, { model }] of models.entries()) {
      // Let the last model's idle ONNX Runtime workers stop spinning first: at 2 threads, a session timed
      // right after another one ran 10-40% slower (docs/measurements.md, session 17); 200 ms removed it.
      if (models.length > 1) await new Promise((done) => setTimeout(done, SETTLE_MS));
      const t = await benchDecode(model, opts);
      tps[i].push(t.tokensPerSec);
      prefill[i].push(t.prefillMs);
    }
  }
  const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const refs = ["cpu", "cpu:js"].map((l) => models.findIndex((m) => m.label === l));
  console.log(
    `\ndecode ${opts.tokens} tokens after a ${opts.prompt}-token prompt, median of ${rounds} interleaved rounds`,
  );
  for (const [i, { label, model }] of models.entries()) {
    const lo = Math.min(...tps[i]), hi = Math.max(...tps[i]);
    const vsCpu = refs.filter((at) => at >= 0 && at !== i).map((at) =>
      `  ${(median(tps[i]) / median(tps[at])).toFixed(2)}x ${models[at].label}`
    ).join(",");
    console.log(
      `${label.padEnd(28)} prefill ${median(prefill[i]).toFixed(1).padStart(8)} ms  decode ` +
        `${median(tps[i]).toFixed(1).padStart(7)} tok/s (${lo.toFixed(1)}-${hi.toFixed(1)})${vsCpu}`,
    );
    model.dispose();
  }
}
