/**
 * The drafting a ReDrafter run uses where its caller leaves it open: per backend, the shapes that
 * `deno task bench` measured best (docs/measurements.md). The CLIs take their defaults from here, and
 * library users can spread it into speculativeGenerate's options.
 *
 * @module
 */
import type { DraftTreeOptions } from "./draft_tree.ts";
import type { LookupOptions } from "./lookup.ts";

/** Beam shape, prompt lookup and draft tree: the drafting fields of SpeculativeOptions. */
export interface Drafting {
  /** W: beams, or nodes expanded per level of a draft tree. */
  beamWidth: number;
  /** L: tokens per beam including the init token (a draft tree's depth is L - 1). */
  beamLength: number;
  /** Prompt lookup drafts, or undefined for none. */
  lookup?: LookupOptions;
  /** A dynamic draft tree instead of beams, or undefined for beams. */
  draftTree?: DraftTreeOptions;
}

/** What `recommendedDrafting` needs to know besides the backend. */
export interface DraftingContext {
  /**
   * The embedded default pair (models/default: a 16M Llama and its drafter), or another pair whose drafter
   * step is dear next to its target's step: rounds that find prompt lookup drafts then verify them alone and
   * skip the drafter. Default false: with a big target its step dwarfs the drafter's, and lookup first would
   * only replace good drafts.
   */
  defaultPair?: boolean;
}

/**
 * The measured best drafting for a backend ("cpu", "onnx-node", "onnx-wasm", "onnx-webgpu", "onnx-cuda";
 * any other name gets the CPU's):
 * - the default pair on the cpu backend: 1 x 3 with lookup first 6, scaled to the match (1.67-1.74x on a
 *   2-core VM); on onnx-node / onnx-wasm: 1 x 3 with lookup first 4 (1.99x on onnx-node at 1 thread);
 * - another pair on a CPU: 1 x 3 beams;
 * - on a GPU (onnx-webgpu; onnx-cuda by analogy, untested): a dynamic draft tree of 32 nodes, 6 deep, 4
 *   nodes expanded per level, since verifying 33 tokens costs about what one does there (2.74x and 2.87x
 *   with the default pair on an H200, against 2.04-2.15x for 4 x 3 beams).
 * The result is a fresh object; spread it into speculativeGenerate's options and override what you like.
 */
export function recommendedDrafting(backend: string, ctx: DraftingContext = {}): Drafting {
  if (backend === "onnx-webgpu" || backend === "onnx-cuda") {
    return { beamWidth: 4, beamLength: 7, draftTree: { nodes: 32 } };
  }
  if (!ctx.defaultPair) return { beamWidth: 1, beamLength: 3 };
  // On onnx-node a verified token costs less than on the cpu backend, so drafts scaled down to a short
  // match gain nothing there (1 x 3 with lookup first 4: 1.99x fixed, 1.91x match, one run at 1 thread).
  const cpu = backend !== "onnx-node" && backend !== "onnx-wasm";
  return {
    beamWidth: 1,
    beamLength: 3,
    lookup: cpu ? { maxDrafts: 6, mode: "first", length: "match" } : { maxDrafts: 4, mode: "first" },
  };
}
