/**
 * Timing of the CPU backend's LM head screen (backends/cpu/head_screen.ts): the same checkpoint loaded with
 * `screenHead` on and off, top-1 calls of T tokens after a prompt, the two models interleaved round by
 * round (the workplace is shared, so only ratios within one run mean much). Prints the median ms per call
 * of each, their ratio, and the mean number of candidate rows the screen recomputed in float32; checks
 * that both give the same ids.
 *
 *   deno run -A tools/bench_head_screen.ts [--dir models/default/target] [--calls 1,2,3,4] [--prompt 100]
 *                                          [--rounds 20] [--reps 20] [--threads N] [--kernels auto|wasm|js]
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { loadWeights } from "../backends/cpu/weights.ts";
import { CpuSession } from "../backends/cpu/session.ts";
import { ropeInvFreq } from "../backends/rope.ts";
import type { KernelChoice } from "../kernels/mod.ts";
import { defaultThreads } from "../kernels/mod.ts";
import { positiveFlag, prefillPrompt, timeTop1Calls } from "./top1_calls.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    dir: { type: "string", default: new URL("../models/default/target", import.meta.url).pathname },
    calls: { type: "string", default: "1,2,3,4" },
    prompt: { type: "string", default: "100" },
    rounds: { type: "string", default: "20" },
    reps: { type: "string", default: "20" },
    threads: { type: "string" },
    kernels: { type: "string", default: "auto" },
  },
});
const calls = values.calls.split(",").map((v) => positiveFlag("calls", v));
const P = positiveFlag("prompt", values.prompt), rounds = positiveFlag("rounds", values.rounds);
const reps = positiveFlag("reps", values.reps);
const threads = values.threads ? positiveFlag("threads", values.threads) : defaultThreads();

const ckpt = await loadCheckpoint(values.dir);
const c = ckpt.config, V = c.vocabSize;
const loaded = [true, false].map((screen) =>
  loadWeights(ckpt, values.kernels as KernelChoice, 8, threads, "auto", screen)
);
ckpt.tensors.close();
const maxT = Math.max(...calls);
const sessions = loaded.map(({ weights, kernels }) =>
  new CpuSession({ config: c, weights, kernels, invFreq: ropeInvFreq(c), batch: 1, capacity: P + maxT })
);
for (const s of sessions) await prefillPrompt(s, V, P);

const stats = loaded[0].weights.headScreen?.stats;
const candidatesBefore = { rows: stats?.rows ?? 0, candidates: stats?.candidates ?? 0 };
const { medians, mismatches } = await timeTop1Calls(sessions, V, P, calls, rounds, reps);
console.log(
  `${values.dir}: vocab ${V}, hidden ${c.hiddenSize}; ${threads} thread(s), kernels ${values.kernels}; ` +
    `context ${P}; median of ${rounds} rounds x ${reps} calls`,
);
console.log("|  T | screened ms | full head ms | speedup |\n|---:|---:|---:|---:|");
calls.forEach((T, ci) => {
  const [a, b] = medians[ci];
  console.log(
    `| ${String(T).padStart(2)} | ${a.toFixed(3).padStart(11)} | ${b.toFixed(3).padStart(12)} | ` +
      `${(b / a).toFixed(3)}x |`,
  );
});
if (stats) {
  const rows = stats.rows - candidatesBefore.rows, cand = stats.candidates - candidatesBefore.candidates;
  console.log(
    `screened rows: ${rows}, mean candidates recomputed per row: ${(cand / Math.max(1, rows)).toFixed(1)}, ` +
      `fallbacks to the full head: ${stats.fallbacks}`,
  );
} else console.log("no screen: a head weight is not finite, both runs used the full head");
for (const l of loaded) l.kernels.dispose();
if (mismatches > 0) {
  console.error(`MISMATCH: ${mismatches} calls gave different ids with and without the screen`);
  Deno.exit(1);
}
