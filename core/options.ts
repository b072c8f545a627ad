/**
 * Generation options shared by the autoregressive and speculative loops, their validation, and the
 * per-row output bookkeeping (EOS, max new tokens, stop strings).
 *
 * @module
 */

import type { RoundChooser } from "./adaptive.ts";
import type { DraftTreeOptions } from "./draft_tree.ts";
import type { LookupOptions } from "./lookup.ts";
import { checkSamplerParams, GREEDY, type SamplerParams } from "./sampling.ts";
import type { Clock, RunMetrics } from "./metrics.ts";
import type { PromptCache } from "./prompt_cache.ts";

/**
 * greedy: argmax. exact (default when sampling): the target's own sampler at every tree node, token-identical
 * to autoregressive sampling with the same seed. apple: the reference's P/Q ratio test with residual
 * resampling on top-50-warped, tempered target logits (not exact).
 */
export type SamplingMode = "greedy" | "exact" | "apple";

/** How tokens are chosen. Omitted fields take the defaults below; `temperature: 0` means greedy. */
export interface SamplingOptions {
  /** Default "exact" (when a SamplingOptions is given at all; omitting it means greedy). */
  mode?: SamplingMode;
  /** Default 1. 0 means greedy. */
  temperature?: number;
  /** Default 0 (off). Not used by the apple rule (fixed top-50 warp). */
  topK?: number;
  /** Default 1 (off). Not used by the apple rule. */
  topP?: number;
  /** PRNG seed; same seed, same output. Default 0. Integer in [0, 2^53). */
  seed?: number;
}

/** Options of autoregressive generation (and the base of SpeculativeOptions). */
export interface GenerateOptions {
  /** New tokens per prompt at most (>= 1). */
  maxNewTokens: number;
  /** Ids that end a row (the EOS token is kept in the output). Default: the target config's eosTokenIds. */
  eosIds?: number[];
  /** Stop strings: a row ends when one appears in its decoded new text; it and what follows are trimmed. */
  stop?: string[];
  /** Token ids to text; required with `stop`, and fills GenerateResult.text when given. */
  decode?: (ids: number[]) => string;
  /** Omitted: greedy. */
  sampling?: SamplingOptions;
  /** Clock for metrics (ms). Default performance.now. */
  now?: Clock;
  /**
   * Keep the target session across calls (batch 1 only): a prompt that starts with the cached tokens (a
   * chat's next turn) feeds only what is new. The call leaves the session and its ids in the cache.
   */
  cache?: PromptCache;
}

/** Options of ReDrafter speculative generation: GenerateOptions plus the beam shape. */
export interface SpeculativeOptions extends GenerateOptions {
  /** W: number of beams (1..vocab). */
  beamWidth: number;
  /** L: tokens per beam including the init token (>= 2). */
  beamLength: number;
  /** Verify beams as a prefix tree (default) or as W separate chains (no prefix sharing). */
  tree?: boolean;
  /**
   * Prompt lookup drafts (core/lookup.ts): one more branch of each round's tree next to the drafter's
   * beams, or (mode "first") the round's only beam when found; off by default. Greedy and exact sampling
   * only (the Apple rule needs the drafter's Q).
   */
  lookup?: LookupOptions;
  /**
   * Draft a dynamic tree (core/draft_tree.ts) instead of beam search: beamLength - 1 drafter steps, each
   * expanding the beamWidth likeliest nodes of the step before into `children` next tokens, and the
   * `nodes` likeliest nodes verified. Greedy and exact sampling only; needs tree verification.
   */
  draftTree?: DraftTreeOptions;
  /**
   * Adaptive drafting (core/adaptive.ts): each round drafts, or runs the target on the last token alone,
   * whichever has cost less per new token so far (timed with `now`), probing the other now and then. Where
   * drafts are rarely accepted, ReDrafter then runs about as fast as autoregression instead of slower.
   * Greedy and exact sampling only (every round keeps their tokens; the Apple rule needs drafts). Off by
   * default; `true` starts a fresh RoundChooser, and passing one keeps what it learned across calls (a
   * chat's turns, a server's requests).
   */
  adaptive?: boolean | RoundChooser;
}

/** Why a row ended: an EOS id, maxNewTokens reached, or a stop string. */
export type FinishReason = "eos" | "length" | "stop";

/** Tokens a row committed in one step. drafted[i] says tokens[i] was drafted and accepted. */
export interface TokenEvent {
  /** Index of the prompt (batch row). */
  row: number;
  /** 0 = the prefill's token, then loop iterations. */
  step: number;
  /** Token ids committed this step, after EOS / max-tokens / stop trimming. */
  tokens: number[];
  /** Same length as tokens; false for the token the target itself produced (the bonus or resampled one). */
  drafted: boolean[];
}

/** The outcome of a generation run, one entry per prompt. */
export interface GenerateResult {
  /** Per row, the new token ids (EOS included; stop strings trimmed at token granularity). */
  ids: number[][];
  /** Per row, decode(ids) cut before the stop string; present when `decode` was given. */
  text?: string[];
  /** Per row, why it ended. */
  finish: FinishReason[];
  /** Timings and acceptance statistics of the run. */
  metrics: RunMetrics;
}

/** Resolved sampling configuration. */
export interface SamplingPlan {
  /** "greedy" whenever temperature is 0 or no SamplingOptions were given. */
  mode: SamplingMode;
  /** Temperature / top-k / top-p with defaults filled in (GREEDY in greedy mode). */
  params: SamplerParams;
  /** PRNG seed, validated. */
  seed: number;
}

/**
 * Fill in defaults and validate sampling options (throws naming the bad field). Undefined means greedy;
 * temperature 0 turns any mode into greedy.
 */
export function resolveSampling(s: SamplingOptions | undefined): SamplingPlan {
  if (!s) return { mode: "greedy", params: GREEDY, seed: 0 };
  const mode = s.mode ?? "exact";
  if (mode !== "greedy" && mode !== "exact" && mode !== "apple") {
    throw new Error(`sampling.mode must be "greedy", "exact" or "apple", got ${JSON.stringify(mode)}`);
  }
  const seed = s.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new Error(`sampling.seed must be an integer in [0, 2^53), got ${seed}`);
  }
  if (mode === "greedy") return { mode, params: GREEDY, seed };
  const params: SamplerParams = { temperature: s.temperature ?? 1, topK: s.topK ?? 0, topP: s.topP ?? 1 };
  checkSamplerParams(params);
  if (mode === "apple" && (params.topK !== 0 || params.topP !== 1)) {
    throw new Error(
      `sampling.topK / sampling.topP are not used by mode "apple" (it applies a fixed top-50 warp)`,
    );
  }
  if (params.temperature === 0) return { mode: "greedy", params: GREEDY, seed };
  return { mode, params, seed };
}

/**
 * Validate options against the prompts before any model call: maxNewTokens >= 1, every prompt non-empty with
 * ids in [0, vocab), and stop strings non-empty and accompanied by `decode`. Throws naming the field or
 * prompt[row][index] at fault.
 */
export function checkGenerateOptions(o: GenerateOptions, prompts: ArrayLike<number>[], vocab: number): void {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) {
    throw new Error(`maxNewTokens must be an integer >= 1, got ${o.maxNewTokens}`);
  }
  if (prompts.length === 0) throw new Error("prompts: at least one prompt is needed");
  if (o.cache && prompts.length !== 1) {
    throw new Error(`cache: a PromptCache serves one prompt at a time, got ${prompts.length}`);
  }
  prompts.forEach((p, r) => {
    if (p.length === 0) {
      throw new Error(`prompts[${r}] is empty (a prompt needs at least one token, e.g. BOS)`);
    }
    for (let i = 0; i < p.length; i++) {
      const t = p[i];
      if (!Number.isInteger(t) || t < 0 || t >= vocab) {
        throw new Error(`prompts[${r}][${i}] = ${t} is not a token id in [0, ${vocab})`);
      }
    }
  });
  if (o.stop && o.stop.length > 0) {
    if (!o.decode) throw new Error("stop strings need a decode(ids) function in the options");
    o.stop.forEach((s, i) => {
      if (typeof s !== "string" || s.length === 0) throw new Error(`stop[${i}] must be a non-empty string`);
    });
  }
}

/** One row's output so far, and the rules that end it. */
export class RowOutput {
  /** New token ids kept so far (EOS included, stop-string tokens trimmed). */
  readonly ids: number[] = [];
  /** Set once the row ended; later pushes are ignored. */
  done = false;
  /** Why the row ended; meaningful once `done`. */
  finish: FinishReason = "length";
  /** Decoded text cut before the stop string; set only when finish is "stop". */
  text = "";

  /**
   * @param row index of the prompt, copied into TokenEvents
   * @param maxNew new tokens at most
   * @param eos ids that end the row (kept in the output)
   * @param stop stop strings (non-empty needs `decode`)
   * @param decode token ids to text, for stop strings and finalText
   */
  constructor(
    /** Index of the prompt (batch row). */
    readonly row: number,
    private readonly maxNew: number,
    private readonly eos: Set<number>,
    private readonly stop: string[],
    private readonly decode: ((ids: number[]) => string) | undefined,
  ) {}

  /**
   * Append tokens committed in one step (stops early at EOS, max tokens or a stop string) and return the
   * event for what was kept, or null if nothing was.
   */
  push(step: number, tokens: ArrayLike<number>, drafted: ArrayLike<boolean>): TokenEvent | null {
    if (this.done) return null;
    const before = this.ids.length;
    const flags: boolean[] = [];
    for (let i = 0; i < tokens.length && !this.done; i++) {
      const t = tokens[i];
      this.ids.push(t);
      flags.push(drafted[i]);
      if (this.stop.length > 0 && this.checkStop()) break;
      if (this.eos.has(t)) this.end("eos");
      else if (this.ids.length >= this.maxNew) this.end("length");
    }
    if (this.ids.length <= before) return null;
    return {
      row: this.row,
      step,
      tokens: this.ids.slice(before),
      drafted: flags.slice(0, this.ids.length - before),
    };
  }

  /** Final text (decode given): decode(ids), or the text cut before the stop string. */
  finalText(): string {
    if (this.finish === "stop") return this.text;
    return this.decode ? this.decode(this.ids) : "";
  }

  private end(reason: FinishReason): void {
    this.done = true;
    this.finish = reason;
  }

  /** If a stop string now appears, cut the text before it, trim ids to tokens wholly before it, end. */
  private checkStop(): boolean {
    const text = this.decode!(this.ids);
    let cut = -1;
    for (const s of this.stop) {
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut < 0) return false;
    this.text = text.slice(0, cut);
    let m = this.ids.length - 1;
    while (m > 0 && !this.text.startsWith(this.decode!(this.ids.slice(0, m)))) m--;
    this.ids.length = m;
    this.end("stop");
    return true;
  }
}
