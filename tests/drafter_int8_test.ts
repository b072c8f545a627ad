/**
 * The int8 drafters (weights "q8", kernels/q8.ts, and "q7", kernels/q7.ts) on the embedded default pair:
 * WASM and JS kernels give the same bits; their drafts stay close to the float drafter's (top-1 agreement,
 * log-probs, tau); and ReDrafter with them is still token-identical to autoregression (greedy and exact
 * sampling), since the target verifies every draft.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { checkDrafterWeights, loadDraftModel } from "../backends/mod.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import { cpuDrafter, readDrafterConfig, readDrafterWeights } from "../drafter/mod.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { openSafetensors } from "../loader/safetensors.ts";
import { wasmRelaxedSimdSupported, wasmSimdSupported } from "../kernels/mod.ts";

/** The int8 formats, each with the bounds its drafts keep to the float drafter's. */
const FORMATS = [
  { format: "q8", agree: 0.95, maxDiff: 0.15 },
  { format: "q7", agree: 0.95, maxDiff: 0.25 },
] as const;

const ROOT = fileURLToPath(new URL("../models/default/", import.meta.url));

function defaultDrafterWeights() {
  const config = readDrafterConfig(ROOT + "drafter/config.json");
  const store = openSafetensors(ROOT + "drafter/model.safetensors");
  const weights = readDrafterWeights(store, config);
  store.close();
  return weights;
}

for (const { format, agree: minAgree, maxDiff: maxDiffBound } of FORMATS) {
  Deno.test(`drafter ${format}: WASM and JS kernels agree bitwise; drafts track the float drafter`, async () => {
    const weights = defaultDrafterWeights();
    const { hiddenSize: H, vocabSize: V } = weights.config;
    const emb = new Float32Array(V * H);
    for (let i = 0; i < emb.length; i++) emb[i] = Math.sin(i * 0.013) * 0.05;
    const u32 = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
    const B = 4, W = 2, N = B * W;
    let agree = 0, total = 0, maxDiff = 0;
    for (let round = 0; round < 6; round++) {
      const ctx = new Float32Array(B * H).map((_, i) => Math.cos(i * 0.37 + round) * 2);
      // q7 runs as q8 on WASM without relaxed SIMD; then only the JS kernels run q7.
      const wasm = wasmSimdSupported() && (format === "q8" || wasmRelaxedSimdSupported());
      const kinds = wasm ? ["wasm", "js"] as const : ["js"] as const;
      const quant = kinds.map((kernels) =>
        cpuDrafter(weights, emb, { kernels, weights: format }).beginRound(ctx, B, W)
      );
      const fp = cpuDrafter(weights, emb, { weights: "fp32" }).beginRound(ctx, B, W);
      let tokens = new Int32Array(N).map((_, n) => 100 + 37 * n + round), parents = new Int32Array(N);
      for (let s = 0; s < 3; s++) {
        const outs = await Promise.all(quant.map((r) => r.step(tokens, parents, W)));
        const f = await fp.step(tokens, parents, W);
        for (let k = 1; k < outs.length; k++) {
          assert.deepEqual(outs[k].ids, outs[0].ids, `round ${round} step ${s}: ids`);
          assert.deepEqual(
            u32(outs[k].logProbs),
            u32(outs[0].logProbs),
            `round ${round} step ${s}: log-probs`,
          );
        }
        for (let n = 0; n < N; n++) {
          total++;
          if (outs[0].ids[n * W] === f.ids[n * W]) agree++;
          const rq = quant[0].logProbRow(s, Math.floor(n / W), n % W),
            rf = fp.logProbRow(s, Math.floor(n / W), n % W);
          // The float drafter's 5 likeliest tokens decide the beams: the int8 drafter must keep them (not warp them away)
          // with nearly the same log-probs.
          const top5 = [...rf.keys()].sort((x, y) => rf[y] - rf[x]).slice(0, 5);
          for (const v of top5) maxDiff = Math.max(maxDiff, Math.abs(rq[v] - rf[v]));
        }
        tokens = f.ids.filter((_, i) => i % W === 0);
        parents = new Int32Array(N).map((_, n) => (n + s) % W);
      }
    }
    assert.ok(agree / total >= minAgree, `top-1 agreement ${agree}/${total}`);
    assert.ok(maxDiff < maxDiffBound, `max log-prob difference ${maxDiff}`);
  });

  Deno.test(`drafter ${format}: ReDrafter on the default pair is token-identical to autoregression, tau close to fp32`, async () => {
    const ckpt = await loadCheckpoint(ROOT + "target");
    const target = createCpuModel(ckpt, { threads: 1 });
    ckpt.tensors.close();
    const prompts = [[1, 450, 1290, 300, 17], [1, 2000, 51, 9], [1, 77, 5000, 310, 8, 26]];
    const fp = await loadDraftModel(ROOT + "drafter", target, { threads: 1, drafterWeights: "fp32" });
    const quant = await loadDraftModel(ROOT + "drafter", target, { threads: 1, drafterWeights: format });
    const greedy = { maxNewTokens: 40, eosIds: [] as number[] };
    const ar = await generate(target, prompts, greedy);
    const shape = { beamWidth: 2, beamLength: 4 };
    const a = await speculativeGenerate(target, fp, prompts, { ...greedy, ...shape });
    const b = await speculativeGenerate(target, quant, prompts, { ...greedy, ...shape });
    assert.deepEqual(b.ids, ar.ids);
    assert.deepEqual(a.ids, ar.ids);
    assert.ok(
      Math.abs(a.metrics.tau - b.metrics.tau) < 0.25,
      `tau fp32 ${a.metrics.tau} vs ${format} ${b.metrics.tau}`,
    );
    assert.ok(b.metrics.tau > 1.3, `${format} tau ${b.metrics.tau}`);
    // Exact sampling: the same seed gives the autoregressive sample whatever the drafts.
    const sampled = { maxNewTokens: 24, eosIds: [] as number[], temperature: 0.8, seed: 5 };
    const arS = await generate(target, prompts, sampled);
    const qS = await speculativeGenerate(target, quant, prompts, { ...sampled, ...shape });
    assert.deepEqual(qS.ids, arS.ids);
    for (const m of [fp, quant, target]) m.dispose();
  });
}

Deno.test("loadDraftModel: drafter weights the cpu drafter cannot hold are refused naming the flag", async () => {
  const ckpt = await loadCheckpoint(ROOT + "target");
  const target = createCpuModel(ckpt, { threads: 1 });
  ckpt.tensors.close();
  await assert.rejects(
    () => loadDraftModel(ROOT + "drafter", target, { drafterWeights: "q4" }),
    /--drafter-weights q4 applies to the onnx-\* backends; the cpu drafter takes fp32, q8, q7/,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => loadDraftModel(ROOT + "drafter", target, { drafterWeights: "int3" as any }),
    /--drafter-weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4, q7; got 'int3'/,
  );
  target.dispose();
  // q7 is the cpu drafter's own format: an ONNX drafter has no such graph.
  assert.throws(
    () => checkDrafterWeights("q7", "onnx-node"),
    /--drafter-weights q7 applies to the cpu drafter/,
  );
  assert.equal(checkDrafterWeights("q7", "cpu"), "q7");
});

Deno.test("drafters q8 and q7: every drafter layout (input_proj or not, rnn or not, ResBlocks) stays token-identical", async () => {
  const { makeRandomDrafter } = await import("../tools/make_random_drafter.ts");
  const FIX = fileURLToPath(new URL("./fixtures/drafter/", import.meta.url));
  const LLAMA = fileURLToPath(new URL("./fixtures/models/llama", import.meta.url));
  const tmp = Deno.makeTempDirSync({ prefix: "drafter-q8-" });
  const pairs: [string, string][] = [
    [FIX + "target", FIX + "drafter"],
    [FIX + "target", FIX + "drafter_proj"],
    [LLAMA, makeRandomDrafter(LLAMA, tmp + "/no_rnn", { seed: 3, rnn: false, layers: 2 })],
    [LLAMA, makeRandomDrafter(LLAMA, tmp + "/proj", { seed: 4, exitDim: 24, layers: 1 })],
  ];
  for (const [targetDir, drafterDir] of pairs) {
    const ckpt = await loadCheckpoint(targetDir);
    const target = createCpuModel(ckpt, { threads: 1 });
    ckpt.tensors.close();
    const prompts = [[1, 17, 42, 9], [1, 5, 60, 3, 8]];
    const opts = { maxNewTokens: 20, eosIds: [] as number[] };
    const ar = await generate(target, prompts, opts);
    for (const { format } of FORMATS) {
      const quant = await loadDraftModel(drafterDir, target, { threads: 1, drafterWeights: format });
      for (const [W, L] of [[1, 3], [3, 4]]) {
        const spec = await speculativeGenerate(target, quant, prompts, {
          ...opts,
          beamWidth: W,
          beamLength: L,
        });
        assert.deepEqual(spec.ids, ar.ids, `${drafterDir} ${format} W=${W} L=${L}`);
      }
      quant.dispose();
    }
    target.dispose();
  }
  Deno.removeSync(tmp, { recursive: true });
});
