/**
 * One generation call as the CLIs make it: ReDrafter when a drafter is loaded and not switched off, the
 * autoregressive baseline otherwise, with the same options either way; plus the abort-aware loop the chat
 * REPL uses and the stats line printed after an answer.
 *
 * @module
 */
import type { DraftModel, TargetModel } from "../core/types.ts";
import {
  type GenerateResult,
  resolveSampling,
  type SamplingOptions,
  type TokenEvent,
} from "../core/options.ts";
import { drain, generateStream } from "../core/generate.ts";
import { speculativeStream } from "../core/speculative.ts";
import type { RoundChooser } from "../core/adaptive.ts";
import type { RunMetrics } from "../core/metrics.ts";
import type { PromptCache } from "../core/prompt_cache.ts";
import type { LookupLength, LookupMode } from "../core/lookup.ts";
import { defaultTreeChildren, type DraftTreeOptions } from "../core/draft_tree.ts";

export type RunMode = "redrafter" | "autoregressive";

export const ADAPTIVE_CHOICES = ["on", "off", "auto"] as const;
export type AdaptiveChoice = typeof ADAPTIVE_CHOICES[number];

/** Whether a run drafts adaptively: RunSettings.adaptive, with "auto" on for exact sampling only. */
export function adaptiveFor(s: Pick<RunSettings, "adaptive" | "sampling">): boolean {
  const choice = s.adaptive ?? "auto";
  if (choice !== "auto") return choice === "on";
  return resolveSampling(s.sampling).mode === "exact";
}

/** Runs a stream to the end, seeing each event (core's drain). */
export { drain as runToEnd };

export interface RunSettings {
  target: TargetModel;
  drafter: DraftModel | null;
  mode: RunMode;
  beamWidth: number;
  beamLength: number;
  tree: boolean;
  /** Prompt lookup drafts per round (SpeculativeOptions.lookup); 0 or undefined: off. */
  lookup?: number;
  /** How lookup drafts join a round: next to the drafter's beams (default) or first (core/lookup.ts). */
  lookupMode?: LookupMode;
  /** How many drafts a lookup match proposes: always `lookup` (default) or scaled to the match. */
  lookupLength?: LookupLength;
  /** A dynamic draft tree instead of beam search (SpeculativeOptions.draftTree); undefined: beams. */
  draftTree?: DraftTreeOptions;
  /** undefined: greedy. */
  sampling?: SamplingOptions;
  /**
   * Adaptive drafting (SpeculativeOptions.adaptive): "on", "off", or "auto" (the default): on when sampling
   * exactly, where drafts are often rejected, off for greedy decoding and the Apple rule.
   */
  adaptive?: AdaptiveChoice;
  /**
   * What adaptive drafting has learned, kept across the calls made with these settings (chat turns, prompts
   * of an evaluation, a server's requests); a fresh one per call when absent.
   */
  chooser?: RoundChooser;
  stop: string[];
  decode?: (ids: number[]) => string;
}

/** ", up to K lookup drafts (mode[, scaled to the match])" for a run with lookup drafts, else "". */
export function lookupDescription(s: Pick<RunSettings, "lookup" | "lookupMode" | "lookupLength">): string {
  if (!s.lookup) return "";
  const scaled = s.lookupLength === "match" ? ", scaled to the match" : "";
  return `, up to ${s.lookup} lookup drafts (${s.lookupMode ?? "branch"}${scaled})`;
}

/** The token stream of one call over a batch of prompts. */
export function streamFor(
  s: RunSettings,
  prompts: number[][],
  maxNewTokens: number,
  cache?: PromptCache,
): AsyncGenerator<TokenEvent, GenerateResult> {
  const common = {
    maxNewTokens,
    cache,
    sampling: s.sampling,
    stop: s.stop.length > 0 ? s.stop : undefined,
    decode: s.decode,
  };
  if (s.mode === "redrafter") {
    if (!s.drafter) throw new Error("redrafter mode without a drafter");
    return speculativeStream(s.target, s.drafter, prompts, {
      ...common,
      beamWidth: s.beamWidth,
      beamLength: s.beamLength,
      lookup: s.lookup ? { maxDrafts: s.lookup, mode: s.lookupMode, length: s.lookupLength } : undefined,
      draftTree: s.draftTree,
      tree: s.tree,
      adaptive: adaptiveFor(s) && (s.chooser ?? true),
    });
  }
  return generateStream(s.target, prompts, common);
}

/**
 * Runs a stream until it ends or `stopped()` turns true (checked after every event). Between events it
 * yields to the event loop once, so signal handlers (Ctrl-C) get to run even when the backend computes
 * synchronously. Returns the result, or null when stopped early.
 */
export async function runUntil(
  gen: AsyncGenerator<TokenEvent, GenerateResult>,
  onEvent: (ev: TokenEvent) => void,
  stopped: () => boolean,
): Promise<GenerateResult | null> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (stopped()) {
      await gen.return(undefined as unknown as GenerateResult); // runs the loop's finally: frees the session
      return null;
    }
    const it = await gen.next();
    if (it.done) return it.value;
    onEvent(it.value);
  }
}

/** "57 tokens, tau 2.41, 38.2 tok/s" (tau only for ReDrafter). */
export function statsLine(m: RunMetrics, mode: RunMode, s?: RunSettings): string {
  const parts = [`${m.newTokens} tokens`];
  if (mode === "redrafter") {
    parts.push(`tau ${m.tau.toFixed(2)}${s ? ` (${draftingShape(s)})` : ""}`);
    if (m.plainSteps > 0) parts.push(`${m.plainSteps} of ${m.steps} rounds plain`);
  }
  parts.push(`${m.tokensPerSecond.toFixed(1)} tok/s`);
  parts.push(`prompt ${m.promptTokens} tokens in ${(m.promptMs / 1000).toFixed(2)} s`);
  return parts.join(", ");
}

/** The drafting of a run in the CLI's terms, e.g. "1 x 3, lookup first 6, match" or "4 x 3, tree 16". */
export function draftingShape(s: RunSettings): string {
  const parts = [`${s.beamWidth} x ${s.beamLength}`];
  if (s.draftTree) {
    const { nodes, children } = s.draftTree;
    const own = children !== undefined && children !== defaultTreeChildren(s.beamWidth);
    parts.push(`tree ${nodes}${own ? ` (${children} children)` : ""}`);
  }
  if (!s.tree) parts.push("chains");
  if (s.lookup) {
    parts.push(`lookup ${s.lookupMode ?? "branch"} ${s.lookup}`);
    if (s.lookupLength === "match") parts.push("match");
  }
  return parts.join(", ");
}
