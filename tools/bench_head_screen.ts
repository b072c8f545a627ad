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
import { parseArgs } from "node:util";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { loadWeights } from "../backends/cpu/weights.ts";
import { CpuSession } from "../backends/cpu/session.ts";
import { ropeInvFreq } from "../backends/rope.ts";
import type { KernelChoice } from "../kernels/mod.ts";
import { defaultThreads } from "../kernels/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
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
const positive = (flag: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got '${v}'`);
  return n;
};
const calls = values.calls.split(",").map((v) => positive("calls", v));
const P = positive("prompt", values.prompt), rounds = positive("rounds", values.rounds);
const reps = positive("reps", values.reps);
const threads = values.threads ? positive("threads", values.threads) : defaultThreads();

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
const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % V);
for (const s of sessions) {
  await s.forward({
    rows: [{ tokens: prompt, positions: Int32Array.from(prompt.keys()), logitIndices: Int32Array.of(P - 1) }],
    logits: { kind: "topk", k: 1 },
  });
  s.commit([null]);
}

const times = calls.map(() => [[] as number[], [] as number[]]);
const stats = loaded[0].weights.headScreen?.stats;
const candidatesBefore = { rows: stats?.rows ?? 0, candidates: stats?.candidates ?? 0 };
let mismatches = 0;
for (let round = 0; round < rounds + 2; round++) {
  for (let ci = 0; ci < calls.length; ci++) {
    const T = calls[ci];
    const ids: string[] = [];
    for (let mi = 0; mi < 2; mi++) {
      const s = sessions[mi];
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) {
        const o = await s.forward({
          rows: [{
            tokens: Int32Array.from({ length: T }, (_, j) => (j * 31 + 5 + i * 7 + round) % V),
            positions: Int32Array.from({ length: T }, (_, j) => P + j),
          }],
          logits: { kind: "topk", k: 1 },
        });
        s.commit([new Int32Array(0)]);
        if (i === 0) ids.push(o.topIds![0].join());
      }
      if (round >= 2) times[ci][mi].push((performance.now() - t0) / reps); // 2 warm-up rounds
    }
    if (ids[0] !== ids[1]) mismatches++;
  }
}
const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
console.log(
  `${values.dir}: vocab ${V}, hidden ${c.hiddenSize}; ${threads} thread(s), kernels ${values.kernels}; ` +
    `context ${P}; median of ${rounds} rounds x ${reps} calls`,
);
console.log("|  T | screened ms | full head ms | speedup |\n|---:|---:|---:|---:|");
calls.forEach((T, ci) => {
  const a = median(times[ci][0]), b = median(times[ci][1]);
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
