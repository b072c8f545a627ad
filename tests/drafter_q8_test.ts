/**
 * The int8 drafter (weights "q8", kernels/q8.ts) on the embedded default pair: WASM and JS kernels give the
 * same bits; its drafts stay close to the float drafter's (top-1 agreement, log-probs, tau); and ReDrafter
 * with it is still token-identical to autoregression (greedy and exact sampling), since the target verifies
 * every draft.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { loadDraftModel } from "../backends/mod.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import { cpuDrafter, readDrafterConfig, readDrafterWeights } from "../drafter/mod.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { openSafetensors } from "../loader/safetensors.ts";
import { wasmSimdSupported } from "../kernels/mod.ts";

const ROOT = fileURLToPath(new URL("../models/default/", import.meta.url));

function defaultDrafterWeights() {
  const config = readDrafterConfig(ROOT + "drafter/config.json");
  const store = openSafetensors(ROOT + "drafter/model.safetensors");
  const weights = readDrafterWeights(store, config);
  store.close();
  return weights;
}

Deno.test("drafter q8: WASM and JS kernels agree bitwise; drafts track the float drafter", async () => {
  const weights = defaultDrafterWeights();
  const { hiddenSize: H, vocabSize: V } = weights.config;
  const emb = new Float32Array(V * H);
  for (let i = 0; i < emb.length; i++) emb[i] = Math.sin(i * 0.013) * 0.05;
  const u32 = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
  const B = 4, W = 2, N = B * W;
  let agree = 0, total = 0, maxDiff = 0;
  for (let round = 0; round < 6; round++) {
    const ctx = new Float32Array(B * H).map((_, i) => Math.cos(i * 0.37 + round) * 2);
    const kinds = wasmSimdSupported() ? ["wasm", "js"] as const : ["js"] as const;
    const q8 = kinds.map((kernels) =>
      cpuDrafter(weights, emb, { kernels, weights: "q8" }).beginRound(ctx, B, W)
    );
    const fp = cpuDrafter(weights, emb, { weights: "fp32" }).beginRound(ctx, B, W);
    let tokens = new Int32Array(N).map((_, n) => 100 + 37 * n + round), parents = new Int32Array(N);
    for (let s = 0; s < 3; s++) {
      const outs = await Promise.all(q8.map((r) => r.step(tokens, parents, W)));
      const f = await fp.step(tokens, parents, W);
      for (let k = 1; k < outs.length; k++) {
        assert.deepEqual(outs[k].ids, outs[0].ids, `round ${round} step ${s}: ids`);
        assert.deepEqual(u32(outs[k].logProbs), u32(outs[0].logProbs), `round ${round} step ${s}: log-probs`);
      }
      for (let n = 0; n < N; n++) {
        total++;
        if (outs[0].ids[n * W] === f.ids[n * W]) agree++;
        const rq = q8[0].logProbRow(s, Math.floor(n / W), n % W),
          rf = fp.logProbRow(s, Math.floor(n / W), n % W);
        // The float drafter's 5 likeliest tokens decide the beams: q8 must keep them (not warp them away)
        // with nearly the same log-probs.
        const top5 = [...rf.keys()].sort((x, y) => rf[y] - rf[x]).slice(0, 5);
        for (const v of top5) maxDiff = Math.max(maxDiff, Math.abs(rq[v] - rf[v]));
      }
      tokens = f.ids.filter((_, i) => i % W === 0);
      parents = new Int32Array(N).map((_, n) => (n + s) % W);
    }
  }
  assert.ok(agree / total >= 0.95, `top-1 agreement ${agree}/${total}`);
  assert.ok(maxDiff < 0.15, `max log-prob difference ${maxDiff}`);
});

Deno.test("drafter q8: ReDrafter on the default pair is token-identical to autoregression, tau close to fp32", async () => {
  const ckpt = await loadCheckpoint(ROOT + "target");
  const target = createCpuModel(ckpt, { threads: 1 });
  ckpt.tensors.close();
  const prompts = [[1, 450, 1290, 300, 17], [1, 2000, 51, 9], [1, 77, 5000, 310, 8, 26]];
  const fp = await loadDraftModel(ROOT + "drafter", target, { threads: 1, drafterWeights: "fp32" });
  const q8 = await loadDraftModel(ROOT + "drafter", target, { threads: 1, drafterWeights: "q8" });
  const greedy = { maxNewTokens: 40, eosIds: [] as number[] };
  const ar = await generate(target, prompts, greedy);
  const shape = { beamWidth: 2, beamLength: 4 };
  const a = await speculativeGenerate(target, fp, prompts, { ...greedy, ...shape });
  const b = await speculativeGenerate(target, q8, prompts, { ...greedy, ...shape });
  assert.deepEqual(b.ids, ar.ids);
  assert.deepEqual(a.ids, ar.ids);
  assert.ok(
    Math.abs(a.metrics.tau - b.metrics.tau) < 0.25,
    `tau fp32 ${a.metrics.tau} vs q8 ${b.metrics.tau}`,
  );
  assert.ok(b.metrics.tau > 1.3, `q8 tau ${b.metrics.tau}`);
  // Exact sampling: the same seed gives the autoregressive sample whatever the drafts.
  const sampled = { maxNewTokens: 24, eosIds: [] as number[], temperature: 0.8, seed: 5 };
  const arS = await generate(target, prompts, sampled);
  const qS = await speculativeGenerate(target, q8, prompts, { ...sampled, ...shape });
  assert.deepEqual(qS.ids, arS.ids);
  for (const m of [fp, q8, target]) m.dispose();
});

Deno.test("loadDraftModel: drafter weights the cpu drafter cannot hold are refused naming the flag", async () => {
  const ckpt = await loadCheckpoint(ROOT + "target");
  const target = createCpuModel(ckpt, { threads: 1 });
  ckpt.tensors.close();
  await assert.rejects(
    () => loadDraftModel(ROOT + "drafter", target, { drafterWeights: "q4" }),
    /--drafter-weights q4 applies to the onnx-\* backends; the cpu drafter takes fp32 or q8/,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => loadDraftModel(ROOT + "drafter", target, { drafterWeights: "int3" as any }),
    /--drafter-weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4; got 'int3'/,
  );
  target.dispose();
});

Deno.test("drafter q8: every drafter layout (input_proj or not, rnn or not, ResBlocks) stays token-identical", async () => {
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
    const q8 = await loadDraftModel(drafterDir, target, { threads: 1, drafterWeights: "q8" });
    const prompts = [[1, 17, 42, 9], [1, 5, 60, 3, 8]];
    const opts = { maxNewTokens: 20, eosIds: [] as number[] };
    const ar = await generate(target, prompts, opts);
    for (const [W, L] of [[1, 3], [3, 4]]) {
      const spec = await speculativeGenerate(target, q8, prompts, { ...opts, beamWidth: W, beamLength: L });
      assert.deepEqual(spec.ids, ar.ids, `${drafterDir} W=${W} L=${L}`);
    }
    q8.dispose();
    target.dispose();
  }
  Deno.removeSync(tmp, { recursive: true });
});
