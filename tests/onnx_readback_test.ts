/**
 * One read-back per ONNX step on WebGPU: the target's packed_topk / packed_logits and the drafter's packed
 * output carry what the session reads (checked bit for bit against the separate outputs on onnx-node), and
 * on the WebGPU EP a target step and a drafter step each cost exactly one GPU -> CPU map (counted on
 * GPUBuffer.mapAsync; ignored without a WebGPU adapter). Also where the drafter runs: the cpu drafter next
 * to an ONNX target (defaultDrafterBackend picks it for onnx-webgpu) stays token-identical to autoregression.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, ensureTargetGraph } from "../backends/onnx/mod.ts";
import { createOnnxDrafter } from "../backends/onnx/drafter.ts";
import { loadOrt, openSession } from "../backends/onnx/runtime.ts";
import { OnnxTargetSession } from "../backends/onnx/session.ts";
import {
  BackendChoiceError,
  checkDrafterBackend,
  defaultDrafterBackend,
  loadDraftModel,
} from "../backends/mod.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import type { ForwardRequest } from "../core/types.ts";
import { makeRandomDrafter } from "../tools/make_random_drafter.ts";
import { chain } from "./support/parity.ts";

const LLAMA = fileURLToPath(new URL("./fixtures/models/llama", import.meta.url));
const CACHE = Deno.makeTempDirSync({ prefix: "onnx-readback-cache-" });
const DRAFTER = makeRandomDrafter(LLAMA, `${CACHE}/drafter`, { seed: 11, layers: 1 });

const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown | null> } }).gpu;
const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;

/** A prompt, then a 3-token tree after it, with each kind of logits request. */
function requests(prompt: number[]): ForwardRequest[] {
  const L = prompt.length;
  const tree = {
    tokens: Int32Array.of(5, 6, 7),
    positions: Int32Array.of(L, L + 1, L + 1),
    parents: Int32Array.of(-1, 0, 0),
  };
  return [
    { rows: [chain(prompt, 0)], logits: { kind: "topk", k: 3 } },
    { rows: [tree], logits: { kind: "full" } },
    { rows: [{ ...tree, logitIndices: Int32Array.of(1, 2) }], logits: { kind: "topk", k: 2 } },
    { rows: [tree], logits: { kind: "none" } },
  ];
}

Deno.test("onnx-node: the packed outputs hold exactly hidden_states, top values / ids and logits", async () => {
  const ck = await loadCheckpoint(LLAMA);
  const ort = await loadOrt({ provider: "onnx-node" });
  const plain = await createOnnxModel(ck, { provider: "onnx-node", cacheDir: CACHE });
  const packedGraph = await ensureTargetGraph(ck, { cacheDir: CACHE, packed: true });
  const session = await openSession(ort, packedGraph, { provider: "onnx-node" });
  assert.ok(!session.outputNames.includes("top_ids"), "no int64 output in the packed graph");
  const plainGraph = await openSession(ort, await ensureTargetGraph(ck, { cacheDir: CACHE }), {
    provider: "onnx-node",
  });
  assert.ok(plainGraph.outputNames.includes("top_ids") && !plainGraph.outputNames.includes("packed_topk"));
  await plainGraph.release();
  const prompt = [1, 17, 42, 9, 3];
  const a = plain.createSession(1, 32);
  const b = new OnnxTargetSession(ort, session, ck.config, 1, 32, undefined, false, true);
  const bits = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];
  for (const req of requests(prompt)) {
    const x = await a.forward(req), y = await b.forward(req);
    a.commit([null]);
    b.commit([null]);
    assert.deepEqual(bits(y.hidden[0]), bits(x.hidden[0]), `hidden, ${req.logits.kind}`);
    assert.deepEqual(y.topIds?.map((r) => [...r]), x.topIds?.map((r) => [...r]), `ids, ${req.logits.kind}`);
    assert.deepEqual(y.topValues?.map(bits), x.topValues?.map(bits), `values, ${req.logits.kind}`);
    assert.deepEqual(y.logits?.map(bits), x.logits?.map(bits), `logits, ${req.logits.kind}`);
  }
  a.dispose();
  b.dispose();
  plain.dispose();
  await session.release();
  ck.tensors.close();
});

Deno.test({
  name: "onnx-webgpu: one GPU -> CPU map per target step and per drafter step",
  ignore: !adapter,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    let maps = 0;
    const proto = (globalThis as unknown as { GPUBuffer: { prototype: { mapAsync: () => Promise<void> } } })
      .GPUBuffer.prototype;
    const original = proto.mapAsync;
    proto.mapAsync = function (this: unknown, ...args: unknown[]) {
      maps++;
      return (original as (...a: unknown[]) => Promise<void>).apply(this, args);
    };
    try {
      const ck = await loadCheckpoint(LLAMA);
      const m = await createOnnxModel(ck, { provider: "onnx-webgpu", cacheDir: CACHE });
      const s = m.createSession(1, 32);
      for (const req of requests([1, 17, 42, 9, 3])) {
        maps = 0;
        await s.forward(req);
        s.commit([null]);
        assert.equal(maps, 1, `maps for a ${req.logits.kind} step`);
      }
      s.dispose();
      const d = await createOnnxDrafter(DRAFTER, m, { provider: "onnx-webgpu" });
      const H = ck.config.hiddenSize;
      const round = d.beginRound(new Float32Array(2 * H).fill(0.1), 2, 2);
      for (let step = 0; step < 3; step++) {
        maps = 0;
        await round.step(Int32Array.of(3, 4, 5, 6), Int32Array.of(0, 1, 0, 1), 2);
        assert.equal(maps, 1, `maps for drafter step ${step}`);
      }
      d.dispose();
      m.dispose();
      ck.tensors.close();
    } finally {
      proto.mapAsync = original;
    }
  },
});

Deno.test("drafter backend: cpu next to onnx-webgpu by default; cpu or the target's backend only", () => {
  for (const b of ["cpu", "onnx-webgpu", "onnx-wasm", "onnx-node"]) {
    assert.equal(defaultDrafterBackend(b), "cpu");
  }
  assert.equal(defaultDrafterBackend("onnx-cuda"), "onnx-cuda");
  assert.equal(checkDrafterBackend("cpu", "onnx-node"), "cpu");
  assert.equal(checkDrafterBackend("onnx-webgpu", "onnx-webgpu"), "onnx-webgpu");
  assert.throws(
    () => checkDrafterBackend("onnx-wasm", "onnx-node"),
    (e: Error) =>
      e instanceof BackendChoiceError &&
      /--drafter-backend must be cpu or the target's --backend \(onnx-node\); got 'onnx-wasm'/.test(
        e.message,
      ),
  );
});

Deno.test("cpu drafter next to an onnx-wasm target: ReDrafter stays token-identical to autoregression", async () => {
  const ck = await loadCheckpoint(LLAMA);
  const target = await createOnnxModel(ck, { provider: "onnx-wasm", cacheDir: CACHE });
  for (const weights of ["fp32", "q8"] as const) {
    const drafter = await loadDraftModel(DRAFTER, target, {
      backend: "onnx-wasm",
      drafterBackend: "cpu",
      drafterWeights: weights,
    });
    const prompts = [[1, 17, 42, 9], [1, 5, 60, 3, 8]];
    const opts = { maxNewTokens: 16, eosIds: [] as number[] };
    const ar = await generate(target, prompts, opts);
    const spec = await speculativeGenerate(target, drafter, prompts, {
      ...opts,
      beamWidth: 2,
      beamLength: 3,
    });
    assert.deepEqual(spec.ids, ar.ids, weights);
    drafter.dispose();
  }
  target.dispose();
  ck.tensors.close();
});

Deno.test({
  name: "onnx readback: clean up the graph cache",
  sanitizeResources: false,
  fn() {
    Deno.removeSync(CACHE, { recursive: true });
  },
});
