/**
 * The drafting a `deno task generate` / `serve` run uses where its flags leave it open (cli/generate.ts
 * draftingDefaults): per backend, with the embedded drafter or another; explicit flags win; apple sampling
 * turns the default lookup and the default draft tree off instead of refusing them.
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

Deno.test("drafting defaults: other drafters get no lookup; GPUs draft a tree of 32 nodes, 4 wide, 6 deep", () => {
  assert.equal(shape("cpu", "/some/drafter"), "1 x 3");
  assert.equal(shape("onnx-node", "/some/drafter"), "1 x 3");
  assert.equal(shape("onnx-webgpu", DEFAULT_DRAFTER), "4 x 7, tree 32");
  assert.equal(shape("onnx-cuda", "/some/drafter"), "4 x 7, tree 32");
  assert.deepEqual(draftingDefaults("onnx-webgpu", true), {
    beamWidth: 4,
    beamLength: 7,
    lookup: 0,
    lookupMode: "branch",
    lookupLength: "fixed",
    treeNodes: 32,
  });
  for (const backend of ["cpu", "onnx-node", "onnx-wasm"]) {
    assert.equal(draftingDefaults(backend, true).treeNodes, 0, backend);
    assert.equal(draftingDefaults(backend, false).treeNodes, 0, backend);
  }
});

Deno.test("drafting defaults: the GPU tree takes the shape flags, yields to --tree-nodes 0 / --no-tree / apple", () => {
  const gpu = (flags: FlagValues) => shape("onnx-webgpu", DEFAULT_DRAFTER, flags);
  assert.equal(gpu({ "beam-width": "2", "beam-length": "4" }), "2 x 4, tree 32");
  assert.equal(gpu({ "tree-nodes": "0" }), "4 x 7");
  assert.equal(gpu({ "tree-nodes": "16", "tree-children": "2" }), "4 x 7, tree 16 (2 children)");
  assert.equal(gpu({ "tree-children": "3" }), "4 x 7, tree 32 (3 children)");
  assert.equal(gpu({ "no-tree": true }), "4 x 7, chains");
  assert.equal(gpu({ sampling: "apple", temperature: "0.7" }), "4 x 7");
  // Explicit trees are still refused where they cannot run, and children without any tree.
  assert.throws(() => gpu({ "no-tree": true, "tree-nodes": "8" }), /--tree-nodes needs tree verification/);
  assert.throws(() => gpu({ "no-tree": true, "tree-children": "2" }), /--tree-children needs a draft tree/);
  assert.throws(() => shape("cpu", DEFAULT_DRAFTER, { "tree-children": "2" }), /needs --tree-nodes N/);
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
  assert.equal(shape("onnx-node", DEFAULT_DRAFTER, { "no-tree": true }), "1 x 3, chains, lookup first 4");
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
