/**
 * The CPU backend of two checkouts in one process: each checkout's loader and backend are imported from
 * its own directory, the same model is loaded by both, and top-1 calls of T tokens after a prompt run
 * interleaved round by round (the workplace is shared, so only ratios within one run mean much). Checks
 * that both give the same ids. Make the second checkout with `git worktree add /tmp/base HEAD~1` (and a
 * `node_modules` link if the backend imports npm packages).
 *
 *   deno run -A tools/ab_cpu_checkouts.ts --a . --b /tmp/base [--dir models/default/target] [--threads N]
 *                                         [--calls 1,2,3,4] [--prompt 100] [--rounds 25] [--reps 15]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import type { TargetSession } from "../core/types.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string" },
    b: { type: "string" },
    dir: { type: "string", default: new URL("../models/default/target", import.meta.url).pathname },
    threads: { type: "string" },
    calls: { type: "string", default: "1,2,3,4" },
    prompt: { type: "string", default: "100" },
    rounds: { type: "string", default: "25" },
    reps: { type: "string", default: "15" },
  },
});
const positive = (flag: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got '${v}'`);
  return n;
};
if (!values.a || !values.b) throw new Error("--a and --b name the two checkouts (repository roots)");
const calls = values.calls.split(",").map((v) => positive("calls", v));
const P = positive("prompt", values.prompt), rounds = positive("rounds", values.rounds);
const reps = positive("reps", values.reps);
const threads = values.threads ? positive("threads", values.threads) : undefined;

const sessions: { s: TargetSession; V: number }[] = [];
for (const root of [values.a, values.b]) {
  const base = `file://${resolve(root)}/`;
  for (const f of ["loader/checkpoint.ts", "backends/cpu/mod.ts"]) {
    try {
      Deno.statSync(new URL(f, base));
    } catch {
      throw new Error(`${root}: no ${f} (is it a checkout of this repository?)`);
    }
  }
  const { loadCheckpoint } = await import(new URL("loader/checkpoint.ts", base).href);
  const { createCpuModel } = await import(new URL("backends/cpu/mod.ts", base).href);
  const ckpt = await loadCheckpoint(values.dir);
  const m = createCpuModel(ckpt, { threads });
  ckpt.tensors.close();
  const s: TargetSession = m.createSession(1, P + Math.max(...calls));
  const V: number = m.config.vocabSize;
  const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % V);
  await s.forward({
    rows: [{ tokens: prompt, positions: Int32Array.from(prompt.keys()), logitIndices: Int32Array.of(P - 1) }],
    logits: { kind: "topk", k: 1 },
  });
  s.commit([null]);
  sessions.push({ s, V });
}

const times = calls.map(() => [[] as number[], [] as number[]]);
let mismatches = 0;
for (let round = 0; round < rounds + 2; round++) {
  for (const [ci, T] of calls.entries()) {
    const ids: string[] = [];
    for (const [mi, { s, V }] of sessions.entries()) {
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
  `a: ${values.a}, b: ${values.b}; ${values.dir}, threads ${threads ?? "default"}, context ${P}; ` +
    `median of ${rounds} rounds x ${reps} calls`,
);
console.log("|  T | a ms | b ms | b / a |\n|---:|---:|---:|---:|");
calls.forEach((T, ci) => {
  const a = median(times[ci][0]), b = median(times[ci][1]);
  console.log(`| ${String(T).padStart(2)} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(b / a).toFixed(3)} |`);
});
if (mismatches > 0) {
  console.error(`MISMATCH: ${mismatches} calls gave different ids in the two checkouts`);
  Deno.exit(1);
}
