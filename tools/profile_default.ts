/**
 * ReDrafter vs autoregression with the embedded default pair (models/default), greedy, on the CPU backend
 * or (--backend) an ONNX provider; --drafter-backend runs the drafter elsewhere (default: cpu next to
 * onnx-webgpu, the target's backend otherwise).
 * Prints per shape: tau, mean draft / verify / accept ms per round, decode tokens/s, and the speedup over
 * autoregression measured in the same process (runs interleaved; each number is the median over --reps
 * passes, because the workplace is shared). Also checks that every ReDrafter output equals the
 * autoregressive one token for token.
 *
 *   deno run -A tools/profile_default.ts [--prompts 8] [--tokens 64] [--reps 3]
 *                                        [--shapes 1x4,4x4,1x2+f2,1x2+b4,4x7t16] [--kernels auto|wasm|js]
 *                                        [--backend cpu|onnx-node|...] [--drafter-backend cpu|...] [--threads N]
 *                                        [--onnx-weights fp32|fp16|q4|q8] [--drafter-weights fp32,q8,..]
 *                                        [--drafter-threads N] [--drafter DIR[,DIR...]]
 *
 * --drafter lists drafter checkpoints (default models/default/drafter); each is timed with each
 * --drafter-weights entry. A --drafter-weights entry FORMAT@N cuts the drafter's head to the N most frequent tokens
 * (`--draft-vocab N`; drafter/vocab.ts), e.g. `--drafter-weights q8,q8@2048`; FORMAT[@N]/BACKEND[:THREADS]
 * runs that drafter on another backend or thread count, e.g. `--drafter-weights q8@2048,q8@2048/cpu:1`
 * next to `--backend onnx-node`.
 *
 * A shape WxLtN drafts a dynamic tree of N nodes (WxLtN/C: C children per expanded node; default W) instead
 * of W beams (core/draft_tree.ts). A shape WxL+bK adds up to K prompt lookup drafts as a branch next to the beams; WxL+fK verifies them
 * instead of running the drafter in rounds where they are found (core/lookup.ts); a trailing m (+f4m)
scales the drafts to the match (lookup length "match": floor(n / 2) for an n-token match, at most K).
 *
 * Tokens/s here is decode only: new tokens over (total - prompt) time, so the prefill (identical for both)
 * does not dilute the ratio.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import {
  createCpuModel,
  generate,
  type GenerateResult,
  loadCheckpoint,
  loadTokenizer,
  speculativeGenerate,
} from "../mod.ts";
import type { KernelChoice } from "../kernels/mod.ts";
import {
  type BackendName,
  defaultDrafterBackend,
  loadDraftModel,
  loadTarget,
  type LoadTargetOptions,
} from "../backends/mod.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    prompts: { type: "string", default: "8" },
    tokens: { type: "string", default: "64" },
    reps: { type: "string", default: "3" },
    shapes: { type: "string", default: "1x4,4x4" },
    kernels: { type: "string", default: "auto" },
    backend: { type: "string", default: "cpu" },
    "drafter-backend": { type: "string" },
    threads: { type: "string" },
    "onnx-weights": { type: "string" },
    "drafter-weights": { type: "string" },
    "drafter-threads": { type: "string" },
    drafter: { type: "string" },
  },
});
const root = new URL("../models/default/", import.meta.url).pathname;
const ckpt = await loadCheckpoint(root + "target");
const threads = values.threads ? Number(values.threads) : undefined;
const backend = values.backend as BackendName;
const target = backend === "cpu"
  ? createCpuModel(ckpt, { kernels: values.kernels as KernelChoice, threads })
  : await loadTarget(ckpt, {
    backend,
    threads,
    onnxWeights: values["onnx-weights"] as LoadTargetOptions["onnxWeights"],
  });
const drafterBackend = values["drafter-backend"] ?? defaultDrafterBackend(backend);
const drafterThreads = values["drafter-threads"] ? Number(values["drafter-threads"]) : undefined;
// --drafter-weights a,b: one drafter per format, each shape timed with each (interleaved, same baseline);
// FORMAT@N restricts its head to a draft vocabulary of the N most frequent tokens (drafter/vocab.ts).
const formats = (values["drafter-weights"] ?? "fp32").split(",");
const drafterDirs = (values.drafter ?? root + "drafter").split(",");
// one row label per drafter: its format, prefixed by its folder's name where several are compared
const labels = drafterDirs.flatMap((dir) =>
  formats.map((f) => drafterDirs.length > 1 ? `${dir.replace(/\/+$/, "").split("/").pop()}:${f}` : f)
);
const drafters = [];
for (const dir of drafterDirs) {
  for (const f of formats) {
    // FORMAT[@N][/BACKEND[:THREADS]]: a drafter on another backend (or thread count) than --drafter-backend's
    const [format, placement] = f.split("/");
    const [weights, vocab] = format.split("@");
    const [dBackend, dThreads] = placement ? placement.split(":") : [drafterBackend, undefined];
    if (placement && !dBackend) throw new Error(`--drafter-weights: '${f}' names no backend after '/'`);
    drafters.push(
      await loadDraftModel(dir, target, {
        backend,
        threads,
        drafterBackend: dBackend as BackendName,
        drafterThreads: dThreads ? Number(dThreads) : drafterThreads,
        drafterWeights: weights as LoadTargetOptions["drafterWeights"],
        draftVocab: vocab ? Number(vocab) : undefined,
      }),
    );
  }
}
if (backend === "cpu") ckpt.tensors.close();
const tok = await loadTokenizer(root + "target");
const lines = Deno.readTextFileSync(root + "prompts.jsonl").trim().split("\n");
const nPrompts = Number(values.prompts), maxNewTokens = Number(values.tokens), reps = Number(values.reps);
const prompts = lines.slice(0, nPrompts).map((l) => tok.encode(JSON.parse(l).prompt));
// A shape is WxL, optionally a dynamic draft tree of N nodes (WxLtN, or WxLtN/C with C children per node;
// core/draft_tree.ts), and optionally lookup drafts: +bK (K drafts next to the beams) or +fK (lookup first).
const shapes = values.shapes.split(",").flatMap((s) => {
  const m = /^(\d+)x(\d+)(?:t(\d+)(?:\/(\d+))?)?(?:\+([bf])(\d+)(m?))?$/.exec(s);
  if (!m) throw new Error(`--shapes: '${s}' is not WxL[tN[/C]][+bK|+fK][m]`);
  const draftTree = m[3] ? { nodes: Number(m[3]), children: m[4] ? Number(m[4]) : undefined } : undefined;
  const lookup = m[5]
    ? {
      maxDrafts: Number(m[6]),
      mode: m[5] === "f" ? "first" as const : "branch" as const,
      length: m[7] ? "match" as const : "fixed" as const,
    }
    : undefined;
  return labels.map((_, d) => ({ W: Number(m[1]), L: Number(m[2]), d, lookup, draftTree, label: s }));
});

interface Sum {
  decodeMs: number;
  tokens: number;
  steps: number;
  tauSum: number;
  draftMs: number;
  verifyMs: number;
  acceptMs: number;
}
const zero = (): Sum => ({
  decodeMs: 0,
  tokens: 0,
  steps: 0,
  tauSum: 0,
  draftMs: 0,
  verifyMs: 0,
  acceptMs: 0,
});
function add(s: Sum, r: GenerateResult): void {
  const m = r.metrics;
  s.decodeMs += m.totalMs - m.promptMs;
  s.tokens += m.newTokens;
  s.steps += m.steps;
  s.tauSum += m.tau * m.steps;
  s.draftMs += m.meanDraftMs * m.steps;
  s.verifyMs += m.meanVerifyMs * m.steps;
  s.acceptMs += m.meanAcceptMs * m.steps;
}
const median = (a: number[]) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];

// warm up (JIT tiers)
for (const p of prompts.slice(0, 2)) {
  await generate(target, [p], { maxNewTokens: 16 });
  for (const drafter of drafters) {
    await speculativeGenerate(target, drafter, [p], { maxNewTokens: 16, beamWidth: 2, beamLength: 4 });
  }
}

const arTps: number[] = [];
const res = shapes.map(() => ({ tps: [] as number[], last: zero() }));
const arIds: number[][] = [];
let mismatches = 0;
for (let rep = 0; rep < reps; rep++) {
  const ar = zero();
  const spec = shapes.map(() => zero());
  for (let i = 0; i < prompts.length; i++) {
    const a = await generate(target, [prompts[i]], { maxNewTokens });
    add(ar, a);
    arIds[i] = a.ids[0];
    for (let j = 0; j < shapes.length; j++) {
      const { W, L, d, lookup, draftTree, label } = shapes[j];
      const r = await speculativeGenerate(target, drafters[d], [prompts[i]], {
        maxNewTokens,
        beamWidth: W,
        beamLength: L,
        lookup,
        draftTree,
      });
      add(spec[j], r);
      if (r.ids[0].join(",") !== arIds[i].join(",")) {
        mismatches++;
        console.error(`MISMATCH prompt ${i} shape ${label}`);
      }
    }
  }
  arTps.push(ar.tokens / (ar.decodeMs / 1000));
  shapes.forEach((_, j) => {
    res[j].tps.push(spec[j].tokens / (spec[j].decodeMs / 1000));
    res[j].last = spec[j];
  });
}
const arMed = median(arTps);
console.log(
  `target ${backend}, drafter ${drafterBackend}, kernels ${values.kernels}, ${nPrompts} prompts x ${maxNewTokens} tokens, median of ${reps}; ` +
    `AR ${arMed.toFixed(1)} tok/s (${(1000 / arMed).toFixed(2)} ms/token)`,
);
const w = Math.max(6, ...shapes.map((s) => s.label.length));
const dw = Math.max(7, ...labels.map((f) => f.length));
console.log(
  `${"shape".padEnd(w)} | ${
    "drafter".padEnd(dw)
  } | tau  | draft ms | verify ms | accept ms | other ms | tok/s  | speedup`,
);
shapes.forEach(({ d, label }, j) => {
  const s = res[j].last, tps = median(res[j].tps);
  console.log(
    `${label.padEnd(w)} | ${labels[d].padEnd(dw)} | ${(s.tauSum / s.steps).toFixed(2)} | ${
      (s.draftMs / s.steps).toFixed(2).padStart(8)
    } | ` +
      `${(s.verifyMs / s.steps).toFixed(2).padStart(9)} | ${
        (s.acceptMs / s.steps).toFixed(2).padStart(9)
      } | ${((s.decodeMs - s.draftMs - s.verifyMs - s.acceptMs) / s.steps).toFixed(2).padStart(8)} | ` +
      `${tps.toFixed(1).padStart(6)} | ${(tps / arMed).toFixed(2)}x`,
  );
});
if (mismatches) console.log(`${mismatches} outputs differ from autoregression`);
else console.log("all ReDrafter outputs equal autoregression");
