/**
 * The onnxruntime-node CUDA EP: parity with transformers on the fixtures when its libraries are installed
 * (ignored otherwise: this workplace has no GPU), and a clear error naming what is missing when they are not.
 * On Ampere+ GPUs run with NVIDIA_TF32_OVERRIDE=0 (tools/gpu_check.sh does) so fp32 MatMuls stay fp32.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, cudaLibraryProblem } from "../backends/onnx/mod.ts";
import type { RowInput } from "../core/types.ts";

const FIXTURES = new URL("./fixtures/models/", import.meta.url).pathname;
const problem = cudaLibraryProblem();

function chain(tokens: number[], start: number): RowInput {
  return { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i) };
}

Deno.test({
  name: "onnx-cuda: missing provider libraries give an error naming them, CUDA 12, cuDNN and how to install",
  ignore: problem === null,
  async fn() {
    const ck = await loadCheckpoint(`${FIXTURES}llama`);
    await assert.rejects(
      () => createOnnxModel(ck, { provider: "onnx-cuda" }),
      (e: Error) =>
        /libonnxruntime_providers_cuda\.so/.test(e.message) && /CUDA 12/.test(e.message) &&
        /cuDNN/.test(e.message) && /install/i.test(e.message),
    );
    ck.tensors.close();
  },
});

for (const arch of ["llama", "qwen2", "mistral"]) {
  Deno.test({
    name: `onnx-cuda ${arch}: logits match transformers within 1e-4; tree + commit match a chain`,
    ignore: problem !== null,
    sanitizeResources: false,
    async fn() {
      const ck = await loadCheckpoint(`${FIXTURES}${arch}`);
      const exp = JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/expected.json`));
      const cacheDir = Deno.makeTempDirSync();
      const m = await createOnnxModel(ck, { provider: "onnx-cuda", cacheDir });
      const s = m.createSession(1, 64);
      const out = await s.forward({ rows: [chain(exp.prompt, 0)], logits: { kind: "full" } });
      const ref = (exp.logits as number[][]).flat();
      let d = 0, mx = 1;
      for (let i = 0; i < ref.length; i++) {
        d = Math.max(d, Math.abs(out.logits![0][i] - ref[i]));
        mx = Math.max(mx, Math.abs(ref[i]));
      }
      console.log(`${arch} cuda relative error ${(d / mx).toExponential(2)}`);
      assert.ok(d / mx < 1e-4);
      s.commit([null]);
      const L = exp.prompt.length;
      await s.forward({
        rows: [{
          tokens: Int32Array.of(5, 6, 7),
          positions: Int32Array.of(L, L + 1, L + 1),
          parents: Int32Array.of(-1, 0, 0),
        }],
        logits: { kind: "none" },
      });
      s.commit([Int32Array.of(0, 2)]);
      const next = await s.forward({ rows: [chain([9], L + 2)], logits: { kind: "full" } });
      const c = m.createSession(1, 64);
      const whole = await c.forward({
        rows: [{ ...chain([...exp.prompt, 5, 7, 9], 0), logitIndices: Int32Array.of(L + 2) }],
        logits: { kind: "full" },
      });
      for (let v = 0; v < m.config.vocabSize; v++) {
        assert.ok(Math.abs(next.logits![0][v] - whole.logits![0][v]) < 1e-4);
      }
      m.dispose();
      ck.tensors.close();
      Deno.removeSync(cacheDir, { recursive: true });
    },
  });
}
