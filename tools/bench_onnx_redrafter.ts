/**
 * Autoregressive vs ReDrafter decode speed on the ONNX providers, with ONNX target and ONNX drafter, greedy.
 * Every configuration (autoregression and each W x L, on each provider) runs once per repeat, interleaved,
 * so a shared machine's drift hits all of them alike; the table reports medians over repeats and the
 * speedup over the same provider's autoregression.
 *
 *   deno run -A tools/bench_onnx_redrafter.ts [--providers onnx-node:1,onnx-node:2,onnx-wasm:1]
 *     [--widths 1,2,4,8] [--lengths 3,4,5] [--prompts 2] [--tokens 64] [--repeats 3] [--json out.json]
 *     [--target models/default/target] [--drafter models/default/drafter]
 *
 * Provider entries are name:threads. Tokens/s = new tokens of all prompts over the wall time of their calls
 * (prefill included, one prompt per call).
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { fileURLToPath } from "node:url";
import type { DraftModel, TargetModel } from "../core/types.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { loadTokenizer } from "../loader/tokenizer.ts";
import { createOnnxDrafter, createOnnxModel, type ProviderName } from "../backends/onnx/mod.ts";

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const { values: a } = toolArgs(import.meta.url, {
  options: {
    providers: { type: "string", default: "onnx-node:1,onnx-node:2,onnx-wasm:1" },
    widths: { type: "string", default: "1,2,4,8" },
    lengths: { type: "string", default: "3,4,5" },
    prompts: { type: "string", default: "2" },
    tokens: { type: "string", default: "64" },
    repeats: { type: "string", default: "3" },
    target: { type: "string", default: root("models/default/target") },
    drafter: { type: "string", default: root("models/default/drafter") },
    json: { type: "string" },
  },
});
const ints = (s: string) => s.split(",").map((x) => parseInt(x, 10));
const widths = ints(a.widths!), lengths = ints(a.lengths!);
const maxNewTokens = parseInt(a.tokens!, 10), repeats = parseInt(a.repeats!, 10);

const ckpt = await loadCheckpoint(a.target!);
const tok = await loadTokenizer(a.target!);
const prompts = Deno.readTextFileSync(root("models/default/prompts.jsonl")).split("\n").filter((l) => l)
  .slice(0, parseInt(a.prompts!, 10)).map((l) => tok.encode(JSON.parse(l).prompt as string));

interface Runner {
  label: string;
  target: TargetModel;
  drafter: DraftModel;
}
const runners: Runner[] = [];
for (const entry of a.providers!.split(",")) {
  const [provider, threads] = entry.split(":");
  const opts = { provider: provider as ProviderName, threads: threads ? parseInt(threads, 10) : undefined };
  const target = await createOnnxModel(ckpt, opts);
  // The drafter on its default threads (1 intra-op thread on onnx-node; backends/onnx/drafter.ts).
  const drafter = await createOnnxDrafter(a.drafter!, target, {
    provider: opts.provider,
    threads: opts.provider === "onnx-wasm" ? opts.threads : undefined,
  });
  runners.push({ label: entry, target, drafter });
}

/** Tokens/s of one pass over the prompts, and tau (mean tokens per round) for speculative runs. */
async function pass(r: Runner, W: number, L: number): Promise<{ tps: number; tau: number; ids: number[][] }> {
  let tokens = 0, ms = 0, tauSum = 0;
  const ids: number[][] = [];
  for (const p of prompts) {
    const t0 = performance.now();
    const res = W === 0
      ? await generate(r.target, [p], { maxNewTokens })
      : await speculativeGenerate(r.target, r.drafter, [p], { maxNewTokens, beamWidth: W, beamLength: L });
    ms += performance.now() - t0;
    tokens += res.ids[0].length;
    tauSum += res.metrics.tau;
    ids.push(res.ids[0]);
  }
  return { tps: (tokens / ms) * 1000, tau: tauSum / prompts.length, ids };
}

const shapes: [number, number][] = [[0, 1]];
for (const W of widths) for (const L of lengths) shapes.push([W, L]);
const samples = new Map<string, number[]>();
const taus = new Map<string, number>();
const key = (r: Runner, W: number, L: number) => `${r.label}|${W}|${L}`;
// Warm-up (graph optimization, allocator growth), then the timed repeats.
for (const r of runners) {
  await pass(r, 0, 1);
  await pass(r, widths[widths.length - 1], lengths[lengths.length - 1]);
}
for (let rep = 0; rep < repeats; rep++) {
  for (const [W, L] of shapes) {
    for (const r of runners) {
      const res = await pass(r, W, L);
      const k = key(r, W, L);
      if (!samples.has(k)) samples.set(k, []);
      samples.get(k)!.push(res.tps);
      taus.set(k, res.tau);
    }
  }
  console.error(`repeat ${rep + 1}/${repeats} done`);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rows: Record<string, unknown>[] = [];
console.log(
  `target ${a.target}, drafter ${a.drafter}; ${prompts.length} prompts x ${maxNewTokens} new tokens, greedy, ` +
    `median of ${repeats}`,
);
console.log(`| provider | W | L | tau | tokens/s | speedup |`);
console.log(`|---|---|---|---|---|---|`);
for (const r of runners) {
  const ar = median(samples.get(key(r, 0, 1))!);
  console.log(`| ${r.label} | AR | - | 1.00 | ${ar.toFixed(1)} | 1.00 |`);
  rows.push({ provider: r.label, width: 0, length: 1, tau: 1, tokensPerSec: ar, speedup: 1 });
  let best = { s: 0, W: 0, L: 0 };
  for (const [W, L] of shapes.slice(1)) {
    const tps = median(samples.get(key(r, W, L))!);
    const tau = taus.get(key(r, W, L))!;
    console.log(
      `| ${r.label} | ${W} | ${L} | ${tau.toFixed(2)} | ${tps.toFixed(1)} | ${(tps / ar).toFixed(2)} |`,
    );
    rows.push({ provider: r.label, width: W, length: L, tau, tokensPerSec: tps, speedup: tps / ar });
    if (tps / ar > best.s) best = { s: tps / ar, W, L };
  }
  console.log(`| ${r.label} | best W=${best.W} L=${best.L} | | | | **${best.s.toFixed(2)}** |`);
}
if (a.json) Deno.writeTextFileSync(a.json, JSON.stringify(rows, null, 2));
for (const r of runners) {
  r.drafter.dispose();
  r.target.dispose();
}
