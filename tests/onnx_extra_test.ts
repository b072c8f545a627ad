/**
 * ONNX backend beyond the CPU providers' basics: real weights (stories260k), fp16 weights vs fp32, and the
 * WebGPU EP (ignored when no WebGPU adapter exists; on Linux without a GPU, mesa-vulkan-drivers provides the
 * lavapipe CPU adapter).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, ensureTargetGraph } from "../backends/onnx/mod.ts";
import type { TargetModel } from "../core/types.ts";
import { argmaxes, chain, checkPromptAndTreeCommit } from "./support/parity.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const STORIES = new URL("../../shared/fixtures/stories260k/", import.meta.url).pathname;
const CACHE = Deno.makeTempDirSync({ prefix: "onnx-extra-cache-" });

const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown | null> } }).gpu;
const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;

/** Greedy decode of `n` tokens after `prompt` (topk k=1, one forward + commit per token). */
async function greedy(m: TargetModel, prompt: number[], n: number): Promise<number[]> {
  const s = m.createSession(1, prompt.length + n);
  let row = chain(prompt, 0);
  const got: number[] = [];
  while (got.length < n) {
    const out = await s.forward({
      rows: [{ ...row, logitIndices: Int32Array.of(row.tokens.length - 1) }],
      logits: { kind: "topk", k: 1 },
    });
    s.commit([null]);
    got.push(out.topIds![0][0]);
    row = chain([got[got.length - 1]], s.lengths()[0]);
  }
  s.dispose();
  return got;
}

Deno.test({
  name: "onnx-node stories260k (real weights): greedy ids match llama2.c run.c",
  ignore: !existsSync(STORIES),
  async fn() {
    const ck = await loadCheckpoint(STORIES);
    const exp = JSON.parse(Deno.readTextFileSync(`${FIXTURES}stories260k_greedy.json`));
    const m = await createOnnxModel(ck, { provider: "onnx-node", cacheDir: CACHE });
    assert.deepEqual(await greedy(m, exp.prompt, exp.greedy.length), exp.greedy);
    m.dispose();
    ck.tensors.close();
  },
});

Deno.test({
  name: "onnx-node stories260k: fp16 weights agree with fp32 on >= 90% of greedy next tokens",
  ignore: !existsSync(STORIES),
  async fn() {
    const ck = await loadCheckpoint(STORIES);
    const m32 = await createOnnxModel(ck, { provider: "onnx-node", cacheDir: CACHE, weights: "fp32" });
    const m16 = await createOnnxModel(ck, { provider: "onnx-node", cacheDir: CACHE, weights: "fp16" });
    const f32 = await ensureTargetGraph(ck, { cacheDir: CACHE, weights: "fp32" });
    const f16 = await ensureTargetGraph(ck, { cacheDir: CACHE, weights: "fp16" });
    assert.ok(
      Deno.statSync(f16.path).size < 0.6 * Deno.statSync(f32.path).size,
      "fp16 graph is about half size",
    );
    // Teacher-forced on the fp32 greedy text, so one early disagreement does not derail the rest.
    const seq = [1, ...(await greedy(m32, [1], 200))];
    const a = await argmaxes(m32, seq), b = await argmaxes(m16, seq);
    const same = a.filter((t, i) => t === b[i]).length;
    const free = await greedy(m16, [1], 200);
    let prefix = 0;
    while (prefix < free.length && free[prefix] === seq[prefix + 1]) prefix++;
    console.log(
      `fp16 vs fp32 greedy next-token match: ${same}/${a.length} (${
        ((100 * same) / a.length).toFixed(1)
      }%), ` +
        `free-running identical prefix ${prefix}/200 tokens`,
    );
    assert.ok(same / a.length >= 0.9);
    m32.dispose();
    m16.dispose();
    ck.tensors.close();
  },
});

for (const arch of ["llama", "qwen2", "mistral"]) {
  // The GroupQueryAttention graph too (fewer ops per step, which WebGPU pays for one by one): opt-in until
  // timed on a GPU (tools/gpu_check.sh), but held to the same parity.
  for (const attention of ["standard", "gqa"] as const) {
    Deno.test({
      name: `onnx-webgpu ${arch}${
        attention === "gqa" ? " (gqa)" : ""
      }: logits match transformers within 1e-4, tree + commit match chains`,
      ignore: !adapter,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        const ck = await loadCheckpoint(`${FIXTURES}models/${arch}`);
        const exp = JSON.parse(Deno.readTextFileSync(`${FIXTURES}models/${arch}/expected.json`));
        const m = await createOnnxModel(ck, { provider: "onnx-webgpu", cacheDir: CACHE, attention });
        await checkPromptAndTreeCommit(m, exp);
        m.dispose();
        ck.tensors.close();
      },
    });
  }
}

Deno.test({
  name: "onnx: clean up the graph cache",
  sanitizeResources: false,
  fn() {
    Deno.removeSync(CACHE, { recursive: true });
  },
});
