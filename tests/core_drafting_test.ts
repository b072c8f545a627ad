/**
 * core/drafting.ts recommendedDrafting: the measured best drafting per backend, valid for
 * speculativeGenerate as it stands (run on a toy pair, token-identical to autoregression), and fresh on
 * every call.
 *
 * @module
 */
import assert from "node:assert/strict";
import { recommendedDrafting } from "../core/drafting.ts";
import { checkBeamShape } from "../core/beam_search.ts";
import { checkDraftTree } from "../core/draft_tree.ts";
import { checkLookupOptions } from "../core/lookup.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";

const BACKENDS = ["cpu", "onnx-node", "onnx-wasm", "onnx-webgpu", "onnx-cuda"];

Deno.test("recommendedDrafting: GPUs get a 32-node draft tree 4 wide and 6 deep, whatever the pair", () => {
  for (const backend of ["onnx-webgpu", "onnx-cuda"]) {
    for (const defaultPair of [true, false]) {
      assert.deepEqual(recommendedDrafting(backend, { defaultPair }), {
        beamWidth: 4,
        beamLength: 7,
        draftTree: { nodes: 32 },
      });
    }
  }
});

Deno.test("recommendedDrafting: the default pair looks up first on CPUs (match length on cpu only)", () => {
  assert.deepEqual(recommendedDrafting("cpu", { defaultPair: true }), {
    beamWidth: 1,
    beamLength: 3,
    lookup: { maxDrafts: 6, mode: "first", length: "match" },
  });
  for (const backend of ["onnx-node", "onnx-wasm"]) {
    assert.deepEqual(recommendedDrafting(backend, { defaultPair: true }), {
      beamWidth: 1,
      beamLength: 3,
      lookup: { maxDrafts: 4, mode: "first" },
    });
  }
  // Another pair on a CPU: plain 1 x 3 beams (the context defaults to another pair).
  for (const backend of ["cpu", "onnx-node", "onnx-wasm"]) {
    assert.deepEqual(recommendedDrafting(backend), { beamWidth: 1, beamLength: 3 });
  }
});

Deno.test("recommendedDrafting: every recommendation passes the options' own checks and is a fresh object", () => {
  for (const backend of BACKENDS) {
    for (const defaultPair of [true, false]) {
      const r = recommendedDrafting(backend, { defaultPair });
      checkBeamShape(r.beamWidth, r.beamLength, 8192);
      if (r.draftTree) checkDraftTree(r.draftTree, r.beamWidth);
      if (r.lookup) checkLookupOptions(r.lookup);
      const again = recommendedDrafting(backend, { defaultPair });
      assert.notEqual(again, r);
      if (r.lookup) assert.notEqual(again.lookup, r.lookup);
      if (r.draftTree) assert.notEqual(again.draftTree, r.draftTree);
    }
  }
});

Deno.test("recommendedDrafting: spread into speculativeGenerate, each gives the autoregressive tokens", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [1] });
  const prompts = [[2, 3, 4, 2, 3], [5, 6]];
  const ar = await generate(t, prompts, { maxNewTokens: 30 });
  for (const backend of BACKENDS) {
    for (const kind of ["random", "oracle"] as const) {
      const d = new ToyDrafter(t, { kind, sharpness: 10 });
      const r = recommendedDrafting(backend, { defaultPair: true });
      const res = await speculativeGenerate(t, d, prompts, { maxNewTokens: 30, ...r });
      assert.deepEqual(res.ids, ar.ids, `${backend} ${kind}`);
      if (kind === "oracle") assert.ok(res.metrics.tau > 2, `${backend}: tau ${res.metrics.tau}`);
    }
  }
});
