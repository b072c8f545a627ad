/**
 * Drafter step time with the whole LM head against draft vocabularies (drafter/vocab.ts), on the cpu and
 * onnx-node drafters: timing only, over any drafter and its target.
 *
 *   deno run -A tools/bench_draft_vocab.ts --target DIR --drafter DIR [--sizes all,8192,4096,2048]
 *     [--widths 1,4] [--weights q8] [--backends cpu,onnx-node] [--id-ranking]
 *
 * The sizes cut the head to the first N ids of the drafter's draft_vocab.json, or, with --id-ranking, to
 * ids 0..N-1 (for random drafters, which have no ranking; the speed does not depend on which rows are
 * kept). Each number is the best of 5 passes of 5 rounds of 3 steps, W beams per row, batch 1.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { readDrafterDir } from "../drafter/load.ts";
import { cpuDrafter, type CpuDrafterWeights } from "../drafter/cpu.ts";
import { restrictDraftVocab } from "../drafter/vocab.ts";
import { createOnnxDrafter } from "../backends/onnx/drafter.ts";
import { checkWeightFormat } from "../backends/onnx/formats.ts";
import type { DraftModel } from "../core/types.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    target: { type: "string" },
    drafter: { type: "string" },
    sizes: { type: "string", default: "all,8192,4096,2048" },
    widths: { type: "string", default: "1,4" },
    weights: { type: "string", default: "q8" },
    backends: { type: "string", default: "cpu,onnx-node" },
    "id-ranking": { type: "boolean", default: false },
  },
});
if (!values.target || !values.drafter) {
  console.error(
    "usage: tools/bench_draft_vocab.ts --target DIR --drafter DIR [--sizes all,4096] [--id-ranking]",
  );
  Deno.exit(2);
}
const ckpt = await loadCheckpoint(values.target);
const V = ckpt.config.vocabSize, H = ckpt.config.hiddenSize;
const embedding = ckpt.tensors.readF32("model.embed_tokens.weight", [V, H]);
ckpt.tensors.close();
const lender = { config: ckpt.config, embeddingTable: () => embedding };
const sizes = values.sizes.split(",").map((s) => s === "all" ? V : Number(s));
const widths = values.widths.split(",").map(Number);

/** The drafter's weights with the head cut to n rows (n = V: whole). */
function weightsFor(n: number) {
  if (n >= V) return readDrafterDir(values.drafter!, lender);
  if (!values["id-ranking"]) return readDrafterDir(values.drafter!, lender, n);
  return restrictDraftVocab(
    readDrafterDir(values.drafter!, lender),
    Int32Array.from({ length: n }, (_, i) => i),
  );
}

async function stepMs(d: DraftModel, W: number): Promise<number> {
  const ctx = Float32Array.from({ length: H }, (_, i) => Math.sin(i));
  const steps = 3;
  const round = async () => {
    const r = d.beginRound(ctx, 1, W);
    let tokens = new Int32Array(W).fill(5), parents = new Int32Array(W);
    for (let s = 0; s < steps; s++) {
      const top = await r.step(tokens, parents, W);
      tokens = Int32Array.from({ length: W }, (_, i) => top.ids[i * W]);
      parents = Int32Array.from({ length: W }, (_, i) => i);
    }
  };
  for (let i = 0; i < 3; i++) await round();
  let best = Infinity;
  for (let pass = 0; pass < 5; pass++) {
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await round();
    best = Math.min(best, (performance.now() - t0) / 5 / steps);
  }
  return best;
}

const dcfg = readDrafterDir(values.drafter, lender).config;
console.log(
  `drafter ${values.drafter}: hidden ${H}, exit_dim ${dcfg.exitDim}, ${dcfg.numDraftLayers} ResBlocks, vocab ${V}; ` +
    `${values.weights} weights, ms per step (batch 1)`,
);
console.log(`backend    W  ${sizes.map((n) => (n >= V ? "all" : String(n)).padStart(14)).join("")}`);
for (const backend of values.backends.split(",")) {
  for (const W of widths) {
    const cells: string[] = [];
    let whole = 0;
    for (const n of sizes) {
      const w = weightsFor(n);
      const d = backend === "cpu"
        ? cpuDrafter(w, embedding, { threads: 1, weights: values.weights as CpuDrafterWeights })
        : await createOnnxDrafter(w, lender, {
          provider: "onnx-node",
          threads: 1,
          weights: checkWeightFormat(values.weights, "--weights"),
        });
      const ms = await stepMs(d, W);
      d.dispose();
      if (n >= V) whole = ms;
      cells.push(`${ms.toFixed(2)}${whole && n < V ? ` (${(whole / ms).toFixed(1)}x)` : ""}`.padStart(14));
    }
    console.log(`${backend.padEnd(9)} ${String(W).padStart(2)}  ${cells.join("")}`);
  }
}
