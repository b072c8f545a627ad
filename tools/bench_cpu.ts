/**
 * Timing of the CPU backend (no assertions; prints numbers): prefill of a prompt, single-token decode, and
 * a 32-token tree-shaped verification call.
 *
 *   deno run -A tools/bench_cpu.ts [--dir <ckpt>] [--prompt 128] [--decode 32] [--block 8]
 *
 * Without --dir it writes a random float32 Llama (hidden 768, 4 layers, ~130 MiB) to a temp dir.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { writeRandomLlama } from "./measure_load_memory.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string" },
    prompt: { type: "string", default: "128" },
    decode: { type: "string", default: "32" },
    block: { type: "string", default: "8" },
  },
});
let dir = values.dir;
const temp = !dir;
if (!dir) {
  dir = Deno.makeTempDirSync({ prefix: "redrafter-bench-" });
  writeRandomLlama(dir, 4);
}
try {
  const ckpt = await loadCheckpoint(dir);
  const model = createCpuModel(ckpt, { tokenBlock: Number(values.block) });
  ckpt.tensors.close();
  const V = model.config.vocabSize;
  const P = Number(values.prompt), D = Number(values.decode);
  const s = model.createSession(1, P + D + 64);
  const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % V);
  let t0 = performance.now();
  await s.forward({
    rows: [{ tokens: prompt, positions: Int32Array.from(prompt.keys()), logitIndices: Int32Array.of(P - 1) }],
    logits: { kind: "topk", k: 1 },
  });
  s.commit([null]);
  const prefillMs = performance.now() - t0;
  t0 = performance.now();
  let tok = 1;
  for (let i = 0; i < D; i++) {
    const len = s.lengths()[0];
    const o = await s.forward({
      rows: [{ tokens: Int32Array.of(tok), positions: Int32Array.of(len) }],
      logits: { kind: "topk", k: 1 },
    });
    s.commit([null]);
    tok = o.topIds![0][0];
  }
  const decodeMs = performance.now() - t0;
  // a verification-shaped call: 4 beams x 8 tokens sharing the root, full logits for all 29 tokens
  const len = s.lengths()[0];
  const parents: number[] = [-1], depth: number[] = [0];
  for (let b = 0; b < 4; b++) {
    for (let d = 1; d < 8; d++) {
      parents.push(d === 1 ? 0 : parents.length - 1);
      depth.push(d);
    }
  }
  t0 = performance.now();
  await s.forward({
    rows: [{
      tokens: Int32Array.from(parents, (_, i) => (i * 31) % V),
      positions: Int32Array.from(depth, (d) => len + d),
      parents: Int32Array.from(parents),
    }],
    logits: { kind: "full" },
  });
  const treeMs = performance.now() - t0;
  const c = model.config;
  console.log(
    `model: hidden ${c.hiddenSize}, ${c.numLayers} layers, vocab ${V}; tokenBlock ${values.block}\n` +
      `prefill ${P} tokens: ${prefillMs.toFixed(0)} ms (${(P / prefillMs * 1000).toFixed(1)} tok/s)\n` +
      `decode ${D} tokens:  ${decodeMs.toFixed(0)} ms (${(D / decodeMs * 1000).toFixed(1)} tok/s)\n` +
      `tree call of ${parents.length} tokens: ${treeMs.toFixed(0)} ms`,
  );
} finally {
  if (temp) Deno.removeSync(dir, { recursive: true });
}
