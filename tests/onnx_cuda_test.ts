/**
 * The onnxruntime-node CUDA EP: parity with transformers on the fixtures when its libraries are installed
 * (ignored otherwise: this workplace has no GPU), and a clear error naming what is missing when they are not.
 * On Ampere+ GPUs run with NVIDIA_TF32_OVERRIDE=0 (tools/gpu_check.sh does) so fp32 MatMuls stay fp32.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, cudaLibraryProblem } from "../backends/onnx/mod.ts";
import { checkPromptAndTreeCommit } from "./support/parity.ts";

const FIXTURES = new URL("./fixtures/models/", import.meta.url).pathname;
const problem = cudaLibraryProblem();

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
      const err = await checkPromptAndTreeCommit(m, exp);
      console.log(`${arch} cuda relative error ${err.toExponential(2)}`);
      m.dispose();
      ck.tensors.close();
      Deno.removeSync(cacheDir, { recursive: true });
    },
  });
}
