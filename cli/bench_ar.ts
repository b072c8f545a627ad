/**
 * `deno task bench --suite ar`: autoregressive greedy tokens/s of our backends next to Hugging Face
 * transformers (torch CPU, fp32, eager attention, `generate()`), on the same checkpoints, prompt ids and
 * token budget, as ratios from one run, and each backend against our CPU reference (the cpu backend) when it
 * is in the list. Models (--ar-models): the real stories260K (from ../shared/fixtures when present), random
 * ~25M- and ~100M-parameter Llamas written to .cache/bench/ on first use, and the embedded default target.
 * The transformers side is tools/hf_compare.py; it is skipped with a note when python3 + torch are missing.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { loadTarget, type LoadTargetOptions } from "../backends/mod.ts";
import { generate } from "../core/generate.ts";
import { writeRandomLlama } from "../tools/measure_load_memory.ts";
import { renderTable } from "./term.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** One benchmarked checkpoint. */
interface ArModel {
  name: string;
  dir: string;
  promptIds: number[];
}

/** The suite's models by --ar-models name. */
export const AR_MODELS = ["stories260k", "random-25m", "random-100m", "default"] as const;

/** The random Llamas (8 layers each), written once under .cache/bench/ (timing only: their weights are noise). */
const RANDOM_LLAMAS: Record<string, { label: string; shape: Parameters<typeof writeRandomLlama>[2] }> = {
  "random-25m": {
    label: "random Llama 25M",
    shape: {
      vocab_size: 4096,
      hidden_size: 512,
      intermediate_size: 1408,
      num_attention_heads: 8,
      num_key_value_heads: 4,
    },
  },
  // H 768, 12 heads (4 KV), I 2048, V 32000, untied head: ~100M parameters, 400 MB of float32.
  "random-100m": {
    label: "random Llama 100M",
    shape: {
      vocab_size: 32000,
      hidden_size: 768,
      intermediate_size: 2048,
      num_attention_heads: 12,
      num_key_value_heads: 4,
    },
  },
};

function arModels(names: readonly string[]): ArModel[] {
  const models: ArModel[] = [];
  const stories = `${ROOT}../shared/fixtures/stories260k`;
  if (!names.includes("stories260k")) {
    // not asked for
  } else if (existsSync(`${stories}/config.json`)) {
    models.push({ name: "stories260K", dir: stories, promptIds: [1, 400, 300] });
  } else {
    console.error("bench: ../shared/fixtures/stories260k not found; skipping it");
  }
  for (const [key, { label, shape }] of Object.entries(RANDOM_LLAMAS)) {
    if (!names.includes(key)) continue;
    const dir = `${ROOT}.cache/bench/${key.replace("random-", "random-llama-")}`;
    if (!existsSync(`${dir}/model.safetensors`)) {
      console.error(`bench: writing a random Llama to ${dir}`);
      Deno.mkdirSync(dir, { recursive: true });
      writeRandomLlama(dir, 8, shape);
    }
    models.push({ name: label, dir, promptIds: [1, 17, 402, 33, 9, 1000, 7, 64] });
  }
  if (names.includes("default")) {
    models.push({
      name: "default target 16M",
      dir: `${ROOT}models/default/target`,
      promptIds: [1, 464, 1001, 12],
    });
  }
  return models;
}

interface HfResult {
  tokensPerSecond: number;
  ids: number[];
}

async function runHf(
  dir: string,
  promptIds: number[],
  maxNewTokens: number,
  threads: number,
): Promise<HfResult | string> {
  const python = Deno.env.get("PYTHON") ?? "python3";
  let out;
  try {
    out = await new Deno.Command(python, {
      args: [
        `${ROOT}tools/hf_compare.py`,
        "--model",
        dir,
        "--prompt-ids",
        promptIds.join(","),
        "--max-new-tokens",
        String(maxNewTokens),
        "--modes",
        "plain",
        "--threads",
        String(threads),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return `${python} not found`;
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop() ?? "";
    return `transformers run failed: ${err}`;
  }
  const res = JSON.parse(new TextDecoder().decode(out.stdout));
  const plain = res.modes.plain;
  return { tokensPerSecond: plain.tokens_per_second, ids: plain.ids[0] };
}

/** Options of the AR suite (from bench.ts flags). */
export interface ArSuiteOptions {
  backends: string[];
  maxNewTokens: number;
  threads: number;
  /** Timed repetitions per (model, backend); the median is reported. */
  repeats: number;
  /** --onnx-weights for the onnx-* backends (quantized weights will not match transformers' ids). */
  onnxWeights?: LoadTargetOptions["onnxWeights"];
  /** --ar-models: names from AR_MODELS (default all). */
  models?: readonly string[];
}

/** Runs the suite and prints the table; returns the rows for bench.json. */
export async function runArSuite(opts: ArSuiteOptions): Promise<Record<string, unknown>[]> {
  const rows: (string | number)[][] = [];
  const json: Record<string, unknown>[] = [];
  for (const m of arModels(opts.models ?? AR_MODELS)) {
    const ckpt = await loadCheckpoint(m.dir);
    const params = ckpt.tensors.names().reduce(
      (n, t) => n + ckpt.tensors.info(t).shape.reduce((a, b) => a * b, 1),
      0,
    );
    const hf = await runHf(m.dir, m.promptIds, opts.maxNewTokens, opts.threads);
    // The CPU reference first, so every other backend's row can give its ratio to it.
    const order = [...opts.backends].sort((a, b) => Number(b === "cpu") - Number(a === "cpu"));
    let cpuRate: number | null = null;
    for (const backend of order) {
      const onnxWeights = backend.startsWith("onnx-") ? opts.onnxWeights : undefined;
      const target = await loadTarget(ckpt, { backend, threads: opts.threads, onnxWeights });
      await generate(target, [m.promptIds], { maxNewTokens: 8 }); // warm-up (JIT, graph build)
      const rates: number[] = [];
      let ids: number[] = [];
      for (let r = 0; r < opts.repeats; r++) {
        const res = await generate(target, [m.promptIds], { maxNewTokens: opts.maxNewTokens, eosIds: [] });
        rates.push(res.metrics.tokensPerSecond);
        ids = res.ids[0];
      }
      target.dispose();
      rates.sort((a, b) => a - b);
      const ours = rates[rates.length >> 1];
      if (backend === "cpu") cpuRate = ours;
      const hfRate = typeof hf === "string" ? null : hf.tokensPerSecond;
      // transformers stops at EOS; compare the common prefix.
      const same = typeof hf === "string" ? "-" : hf.ids.every((t, i) => t === ids[i]) ? "yes" : "no";
      rows.push([
        m.name,
        (params / 1e6).toFixed(2) + "M",
        backend,
        ours.toFixed(1),
        cpuRate === null ? "-" : (ours / cpuRate).toFixed(2) + "x",
        hfRate === null ? "-" : hfRate.toFixed(1),
        hfRate === null ? "-" : (ours / hfRate).toFixed(2) + "x",
        same,
      ]);
      json.push({
        model: m.name,
        params,
        backend,
        tokensPerSecond: ours,
        vsCpuReference: cpuRate === null ? null : ours / cpuRate,
        hfTokensPerSecond: hfRate,
        sameIds: same,
      });
    }
    ckpt.tensors.close();
    if (typeof hf === "string") console.error(`bench: ${m.name}: transformers skipped (${hf})`);
  }
  console.log(
    renderTable(
      [
        "model",
        "params",
        "backend",
        "ours tok/s",
        "x cpu reference",
        "transformers tok/s",
        "ours / transformers",
        "same greedy ids",
      ],
      rows,
    ),
  );
  console.log(
    `autoregressive greedy, batch 1, ${opts.maxNewTokens} new tokens, median of ${opts.repeats}; transformers: ` +
      `torch CPU fp32 eager, ${opts.threads} thread(s), generate() incl. prefill, same prompt ids`,
  );
  return json;
}
