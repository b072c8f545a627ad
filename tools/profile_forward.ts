/**
 * Where a CPU-backend forward pass spends its time: the stages of top-1 calls of T tokens (a verification's
 * shape) after a prompt of --context tokens, per thread count, from createCpuModel's `profile` option
 * (backends/cpu/session.ts ForwardProfile). Models with different thread counts run interleaved, round by
 * round (the workplace is shared: compare within one run), and must return the same ids.
 *
 *   deno run -A tools/profile_forward.ts [--dir models/default/target] [--threads 1,2] [--calls 1,4]
 *                                        [--context 100] [--reps 200] [--rounds 3]
 *
 * Prints, per call size and thread count, the µs per call of each stage and the wall time per call.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { createCpuModel, type ForwardProfile } from "../backends/cpu/mod.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import type { TargetSession } from "../core/types.ts";
import { positiveFlag, prefillPrompt } from "./top1_calls.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    dir: { type: "string", default: new URL("../models/default/target", import.meta.url).pathname },
    threads: { type: "string", default: "1,2" },
    calls: { type: "string", default: "1,4" },
    context: { type: "string", default: "100" },
    reps: { type: "string", default: "200" },
    rounds: { type: "string", default: "3" },
  },
});
const list = (flag: string, v: string) => v.split(",").map((x) => positiveFlag(flag, x));
const threadCounts = list("threads", values.threads), calls = list("calls", values.calls);
const P = positiveFlag("context", values.context), reps = positiveFlag("reps", values.reps);
const rounds = positiveFlag("rounds", values.rounds);

const ckpt = await loadCheckpoint(values.dir);
const profiles = threadCounts.map((): ForwardProfile => ({}));
const models = threadCounts.map((threads, i) => createCpuModel(ckpt, { threads, profile: profiles[i] }));
const V = ckpt.config.vocabSize;
if (P + Math.max(...calls) > ckpt.config.maxPositionEmbeddings) {
  throw new Error(
    `--context ${P} plus the largest call leaves the model's ${ckpt.config.maxPositionEmbeddings} positions`,
  );
}
const sessions: TargetSession[] = [];
for (const m of models) {
  const s = m.createSession(1, P + Math.max(...calls));
  await prefillPrompt(s, V, P);
  sessions.push(s);
}

/** reps top-1 calls of T tokens on session s (nothing kept); returns the first call's ids. */
async function run(s: TargetSession, T: number, n: number): Promise<string> {
  let ids = "";
  for (let i = 0; i < n; i++) {
    const o = await s.forward({
      rows: [{
        tokens: Int32Array.from({ length: T }, (_, j) => (j * 31 + 5 + i * 7) % V),
        positions: Int32Array.from({ length: T }, (_, j) => P + j),
      }],
      logits: { kind: "topk", k: 1 },
    });
    s.commit([new Int32Array(0)]);
    if (i === 0) ids = o.topIds![0].join();
  }
  return ids;
}

// per call size, per model: summed stage ms and wall ms over the timed rounds
const sums = calls.map(() => threadCounts.map(() => ({ stages: {} as ForwardProfile, wall: 0, calls: 0 })));
let mismatches = 0;
for (let round = 0; round < rounds + 1; round++) {
  for (const [ci, T] of calls.entries()) {
    const ids: string[] = [];
    for (const [mi, s] of sessions.entries()) {
      const p = profiles[mi];
      for (const k of Object.keys(p)) delete p[k];
      const t0 = performance.now();
      ids.push(await run(s, T, round === 0 ? 20 : reps)); // round 0 warms up (JIT, caches)
      const wall = performance.now() - t0;
      if (round === 0) continue;
      const acc = sums[ci][mi];
      for (const [k, v] of Object.entries(p)) acc.stages[k] = (acc.stages[k] ?? 0) + v;
      acc.wall += wall;
      acc.calls += reps;
    }
    if (ids.some((x) => x !== ids[0])) mismatches++;
  }
}

const stageNames = ["embed", "norm", "qkv", "rope_kv", "attention", "o", "gate_up", "swiglu", "down", "head"];
console.log(
  `${values.dir}: top-1 calls after a ${P}-token context, ${reps} calls x ${rounds} rounds; µs per call`,
);
console.log(["T", "threads", ...stageNames, "wall"].join(" | "));
for (const [ci, T] of calls.entries()) {
  for (const [mi, threads] of threadCounts.entries()) {
    const { stages, wall, calls: n } = sums[ci][mi];
    const us = (ms: number) => (ms / n * 1000).toFixed(0);
    console.log([T, threads, ...stageNames.map((k) => us(stages[k] ?? 0)), us(wall)].join(" | "));
  }
}
if (mismatches) throw new Error(`${mismatches} call sizes returned different ids across thread counts`);
for (const m of models) m.dispose();
