/**
 * The drafting a `deno task generate` / `serve` run uses where its flags leave it open (cli/generate.ts
 * draftingDefaults): per backend, with the embedded drafter or another; explicit flags win; apple sampling
 * turns the default lookup off instead of refusing it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { relative as relative_ } from "node:path";
import { draftingDefaults, settingsFrom } from "../cli/generate.ts";
import { draftingShape } from "../cli/run.ts";
import { DEFAULT_DRAFTER, type Pair } from "../cli/setup.ts";
import { type FlagValues, UsageError } from "../cli/args.ts";

/** Just what settingsFrom reads of a loaded pair. */
function fakePair(backend: string, drafterDir: string | null): Pair {
  return {
    target: { backend, config: { vocabSize: 8192 } },
    drafter: drafterDir ? {} : null,
    tokenizer: null,
    drafterDir,
    draftVocab: null,
  } as unknown as Pair;
}

const shape = (backend: string, dir: string | null, flags: FlagValues = {}) =>
  draftingShape(settingsFrom(flags, fakePair(backend, dir), "redrafter"));

Deno.test("drafting defaults: the embedded pair drafts 1 x 3 with lookup first (scaled to the match on cpu)", () => {
  assert.equal(shape("cpu", DEFAULT_DRAFTER), "1 x 3, lookup first 6, match");
  assert.equal(shape("onnx-node", DEFAULT_DRAFTER), "1 x 3, lookup first 4");
  assert.equal(shape("onnx-wasm", DEFAULT_DRAFTER), "1 x 3, lookup first 4");
});

Deno.test("drafting defaults: the embedded drafter named by a relative path is still the embedded one", () => {
  const relative = relative_(Deno.cwd(), DEFAULT_DRAFTER);
  assert.notEqual(relative, DEFAULT_DRAFTER);
  assert.equal(shape("cpu", relative), "1 x 3, lookup first 6, match");
  assert.equal(shape("cpu", DEFAULT_DRAFTER + "/"), "1 x 3, lookup first 6, match");
});

Deno.test("drafting defaults: other drafters get no lookup; GPUs draft 4 x 3", () => {
  assert.equal(shape("cpu", "/some/drafter"), "1 x 3");
  assert.equal(shape("onnx-node", "/some/drafter"), "1 x 3");
  assert.equal(shape("onnx-webgpu", DEFAULT_DRAFTER), "4 x 3");
  assert.equal(shape("onnx-cuda", "/some/drafter"), "4 x 3");
  assert.deepEqual(draftingDefaults("onnx-webgpu", true), {
    beamWidth: 4,
    beamLength: 3,
    lookup: 0,
    lookupMode: "branch",
    lookupLength: "fixed",
  });
});

Deno.test("drafting defaults: each flag given wins over its default, the others stay", () => {
  assert.equal(shape("cpu", DEFAULT_DRAFTER, { "beam-width": "2" }), "2 x 3, lookup first 6, match");
  assert.equal(shape("cpu", DEFAULT_DRAFTER, { "beam-length": "4", lookup: "0" }), "1 x 4");
  assert.equal(
    shape("cpu", DEFAULT_DRAFTER, { "lookup-mode": "branch", "lookup-length": "fixed" }),
    "1 x 3, lookup branch 6",
  );
  assert.equal(shape("onnx-node", "/some/drafter", { lookup: "4" }), "1 x 3, lookup branch 4");
  assert.equal(shape("cpu", DEFAULT_DRAFTER, { "tree-nodes": "4" }), "1 x 3, tree 4, lookup first 6, match");
  assert.equal(shape("onnx-webgpu", DEFAULT_DRAFTER, { "no-tree": true }), "4 x 3, chains");
});

Deno.test("drafting defaults: apple sampling drops the default lookup and still refuses an explicit one", () => {
  const apple = { sampling: "apple", temperature: "0.7" };
  assert.equal(shape("cpu", DEFAULT_DRAFTER, apple), "1 x 3");
  assert.throws(() => shape("cpu", DEFAULT_DRAFTER, { ...apple, lookup: "4" }), UsageError);
  // Lookup flags without lookup drafts are still refused where the default has none.
  assert.throws(
    () => shape("cpu", "/some/drafter", { "lookup-mode": "first" }),
    /--lookup-mode needs --lookup N/,
  );
});
