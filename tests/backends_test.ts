/**
 * backends/mod.ts: the CPU backend loads; an unknown name gives a BackendChoiceError naming --backend (the
 * CLIs turn it into a usage error, exit code 2); onnx-node loads through the dynamic import.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { BackendChoiceError, BACKENDS, checkBackend, loadDraftModel, loadTarget } from "../backends/mod.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";

const LLAMA = fileURLToPath(new URL("./fixtures/models/llama", import.meta.url));

Deno.test("loadTarget: cpu by default", async () => {
  const ckpt = await loadCheckpoint(LLAMA);
  const model = await loadTarget(ckpt);
  assert.equal(model.backend, "cpu");
  assert.equal(model.config.vocabSize, 128);
  model.dispose();
  ckpt.tensors.close();
});

Deno.test("checkBackend: the choices, and an error naming --backend for others", () => {
  for (const b of BACKENDS) assert.equal(checkBackend(b), b);
  assert.throws(() => checkBackend("gpu"), (e) => {
    assert.ok(e instanceof BackendChoiceError);
    assert.match(
      (e as Error).message,
      /^--backend must be one of cpu, onnx-wasm, onnx-webgpu, onnx-node, onnx-cuda/,
    );
    return true;
  });
});

Deno.test({
  name: "loadTarget: onnx-node through the dynamic import gives the CPU backend's greedy tokens",
  fn: async () => {
    const { generate } = await import("../core/generate.ts");
    const ckpt = await loadCheckpoint(LLAMA);
    const cpu = await loadTarget(ckpt, { backend: "cpu" });
    const onnx = await loadTarget(ckpt, { backend: "onnx-node", threads: 1 });
    assert.equal(onnx.backend, "onnx-node");
    const prompt = [[1, 17, 42, 99]];
    const a = await generate(cpu, prompt, { maxNewTokens: 12 });
    const b = await generate(onnx, prompt, { maxNewTokens: 12 });
    assert.deepEqual(b.ids, a.ids);
    onnx.dispose();
    cpu.dispose();
    ckpt.tensors.close();
  },
});

Deno.test("loadDraftModel: the ONNX drafter on onnx-node gives the CPU pair's ReDrafter tokens", async () => {
  const { speculativeGenerate } = await import("../core/speculative.ts");
  const DRAFTER = fileURLToPath(new URL("./fixtures/drafter/drafter", import.meta.url));
  const ckpt = await loadCheckpoint(fileURLToPath(new URL("./fixtures/drafter/target", import.meta.url)));
  const cpu = await loadTarget(ckpt, { backend: "cpu" });
  const onnx = await loadTarget(ckpt, { backend: "onnx-node", threads: 1 });
  const cpuDrafter = await loadDraftModel(DRAFTER, cpu, { backend: "cpu" });
  const onnxDrafter = await loadDraftModel(DRAFTER, onnx, { backend: "onnx-node", threads: 1 });
  const opts = { maxNewTokens: 12, beamWidth: 3, beamLength: 4 };
  const a = await speculativeGenerate(cpu, cpuDrafter, [[1, 5, 9]], opts);
  const b = await speculativeGenerate(onnx, onnxDrafter, [[1, 5, 9]], opts);
  assert.deepEqual(b.ids, a.ids);
  for (const m of [cpuDrafter, onnxDrafter, onnx, cpu]) m.dispose();
  ckpt.tensors.close();
});
