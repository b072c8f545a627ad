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
import { toolArgs } from "./tool_args.ts";
import { resolve } from "node:path";
import type { TargetSession } from "../core/types.ts";
import { positiveFlag, prefillPrompt, timeTop1Calls } from "./top1_calls.ts";

const { values } = toolArgs(import.meta.url, {
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
if (!values.a || !values.b) throw new Error("--a and --b name the two checkouts (repository roots)");
const calls = values.calls.split(",").map((v) => positiveFlag("calls", v));
const P = positiveFlag("prompt", values.prompt), rounds = positiveFlag("rounds", values.rounds);
const reps = positiveFlag("reps", values.reps);
const threads = values.threads ? positiveFlag("threads", values.threads) : undefined;

const sessions: TargetSession[] = [];
let V = 0;
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
  V = m.config.vocabSize;
  await prefillPrompt(s, V, P);
  sessions.push(s);
}

const { medians, mismatches } = await timeTop1Calls(sessions, V, P, calls, rounds, reps);
console.log(
  `a: ${values.a}, b: ${values.b}; ${values.dir}, threads ${threads ?? "default"}, context ${P}; ` +
    `median of ${rounds} rounds x ${reps} calls`,
);
console.log("|  T | a ms | b ms | b / a |\n|---:|---:|---:|---:|");
calls.forEach((T, ci) => {
  const [a, b] = medians[ci];
  console.log(`| ${String(T).padStart(2)} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(b / a).toFixed(3)} |`);
});
if (mismatches > 0) {
  console.error(`MISMATCH: ${mismatches} calls gave different ids in the two checkouts`);
  Deno.exit(1);
}
