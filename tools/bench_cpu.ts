/**
 * Timing of the CPU backend (no assertions; prints numbers): the per-token cost of one T-token call (a
 * verification-shaped chain, full logits for every token) against T single-token calls, for
 * T = 1, 2, 4, 8, 16, 32 (or --calls LIST), and single-token decode tok/s.
 *
 *   deno run -A tools/bench_cpu.ts [--dir <ckpt>] [--kernels auto|wasm|js] [--prompt 64] [--decode 32]
 *                                  [--trials 3] [--seconds 0.4] [--keep-bf16 auto|true|false] [--threads N]
 *                                  [--calls 1,2,3,4,5,8]
 *
 * Without --dir it writes a random ~20M-parameter float32 Llama (hidden 512, 8 layers, 8 heads / 4 kv
 * heads, intermediate 1408, vocab 4096) to a temp dir. Each number is the best of --trials timings of
 * about --seconds each: the workplace is shared, so compare ratios within one run.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { type CpuModelOptions, createCpuModel } from "../backends/cpu/mod.ts";
import { writeRandomLlama } from "./measure_load_memory.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    dir: { type: "string" },
    kernels: { type: "string", default: "auto" },
    prompt: { type: "string", default: "64" },
    decode: { type: "string", default: "32" },
    trials: { type: "string", default: "3" },
    seconds: { type: "string", default: "0.4" },
    "keep-bf16": { type: "string", default: "auto" },
    threads: { type: "string" },
    calls: { type: "string", default: "1,2,4,8,16,32" },
  },
});
let dir = values.dir;
const temp = !dir;
if (!dir) {
  dir = Deno.makeTempDirSync({ prefix: "redrafter-bench-" });
  writeRandomLlama(dir, 8, {
    vocab_size: 4096,
    hidden_size: 512,
    intermediate_size: 1408,
    num_attention_heads: 8,
    num_key_value_heads: 4,
  });
}
const trials = Number(values.trials), budgetMs = Number(values.seconds) * 1000;

/** Best-of-trials milliseconds of one call of f (repeated to fill the time budget). */
async function best(f: () => Promise<void>): Promise<number> {
  await f(); // warm up (and tier up the compiled code)
  let bestMs = Infinity;
  for (let t = 0; t < trials; t++) {
    let reps = 0;
    const t0 = performance.now();
    do {
      await f();
      reps++;
    } while (performance.now() - t0 < budgetMs);
    bestMs = Math.min(bestMs, (performance.now() - t0) / reps);
  }
  return bestMs;
}

try {
  const ckpt = await loadCheckpoint(dir);
  const keep = values["keep-bf16"];
  if (!["auto", "true", "false"].includes(keep)) {
    throw new Error(`--keep-bf16 must be auto, true or false, got '${keep}'`);
  }
  const model = createCpuModel(ckpt, {
    kernels: values.kernels as CpuModelOptions["kernels"],
    keepBf16: keep === "auto" ? "auto" : keep === "true",
    threads: values.threads ? Number(values.threads) : undefined,
  });
  ckpt.tensors.close();
  const c = model.config;
  const V = c.vocabSize;
  const P = Number(values.prompt), D = Number(values.decode);
  let params = V * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  const hd = c.headDim, H = c.hiddenSize;
  params += c.numLayers * (H * hd * (2 * c.numHeads + 2 * c.numKvHeads) + 3 * H * c.intermediateSize + 2 * H);
  const s = model.createSession(1, P + D + 64);
  const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % V);
  let t0 = performance.now();
  await s.forward({
    rows: [{ tokens: prompt, positions: Int32Array.from(prompt.keys()), logitIndices: Int32Array.of(P - 1) }],
    logits: { kind: "topk", k: 1 },
  });
  s.commit([null]);
  const prefillMs = performance.now() - t0;

  // A T-token chain after the prompt, full logits for every token, then nothing kept (the context stays P).
  const call = (T: number) => async () => {
    await s.forward({
      rows: [{
        tokens: Int32Array.from({ length: T }, (_, i) => (i * 31 + 5) % V),
        positions: Int32Array.from({ length: T }, (_, i) => P + i),
      }],
      logits: { kind: "full" },
    });
    s.commit([new Int32Array(0)]);
  };
  const rows: string[] = [];
  let one = 0;
  const sizes = values.calls.split(",").map(Number);
  if (sizes[0] !== 1 || !sizes.every((T) => Number.isInteger(T) && T >= 1)) {
    throw new Error(`--calls must be a list of token counts starting with 1, got '${values.calls}'`);
  }
  for (const T of sizes) {
    const ms = await best(call(T));
    if (T === 1) one = ms;
    rows.push(
      `| ${String(T).padStart(2)} | ${ms.toFixed(2).padStart(8)} | ${(ms / T).toFixed(2).padStart(8)} | ` +
        `${(one * T).toFixed(2).padStart(9)} | ${(ms / T / one).toFixed(3)} |`,
    );
  }

  t0 = performance.now();
  let tok = 1;
  for (let i = 0; i < D; i++) {
    const o = await s.forward({
      rows: [{ tokens: Int32Array.of(tok), positions: Int32Array.of(s.lengths()[0]) }],
      logits: { kind: "topk", k: 1 },
    });
    s.commit([null]);
    tok = o.topIds![0][0];
  }
  const decodeMs = performance.now() - t0;
  console.log(
    `model: ${(params / 1e6).toFixed(1)}M params, hidden ${H}, ${c.numLayers} layers, ` +
      `${c.numHeads}/${c.numKvHeads} heads, intermediate ${c.intermediateSize}, vocab ${V}; ` +
      `kernels ${values.kernels}, threads ${values.threads ?? "default (cores)"}; context ${P}\n` +
      `prefill ${P} tokens: ${prefillMs.toFixed(0)} ms (${(P / prefillMs * 1000).toFixed(1)} tok/s)\n` +
      `decode ${D} tokens:  ${decodeMs.toFixed(0)} ms (${(D / decodeMs * 1000).toFixed(1)} tok/s)\n\n` +
      `|  T | call ms  | ms/token | T x (T=1) | per-token / T=1 |\n|---:|---:|---:|---:|---:|\n` +
      rows.join("\n"),
  );
} finally {
  if (temp) Deno.removeSync(dir, { recursive: true });
}
