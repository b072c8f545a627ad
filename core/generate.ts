/**
 * Batched autoregressive generation over a TargetSession: the baseline the speculative loop must match
 * token for token. Each row has its own length; a finished row sends no tokens.
 *
 * @module
 */

import { MetricsRecorder } from "./metrics.ts";
import {
  checkGenerateOptions,
  type GenerateOptions,
  type GenerateResult,
  resolveSampling,
  RowOutput,
  type SamplingPlan,
  type TokenEvent,
} from "./options.ts";
import { appleProbs, drawCategorical, sampleToken, uniform } from "./sampling.ts";
import type { ForwardOutput, LogitsMode, RowInput, TargetModel, TargetSession } from "./types.ts";
import { openFromCache, type PromptCache } from "./prompt_cache.ts";

/** The logits mode a sampling plan needs: greedy asks for the top-1 only. */
export function logitsModeFor(plan: SamplingPlan): LogitsMode {
  return plan.mode === "greedy" ? { kind: "topk", k: 1 } : { kind: "full" };
}

/**
 * The target's token after requested position i of row r's output, for a token landing at absolute position
 * `position`: argmax (greedy; the output is topk with k = 1), the AR sampler (exact), or the reference's
 * warped categorical (apple).
 */
export function pickToken(
  out: ForwardOutput,
  r: number,
  i: number,
  plan: SamplingPlan,
  position: number,
  V: number,
): number {
  if (plan.mode === "greedy") {
    const ids = out.topIds?.[r];
    if (!ids || ids.length <= i) {
      throw new Error(`target forward returned no top-1 id for row ${r} position ${i}`);
    }
    return ids[i];
  }
  const logits = out.logits?.[r];
  if (!logits || logits.length < (i + 1) * V) {
    throw new Error(`target forward returned no logits row ${i} for row ${r} (vocab ${V})`);
  }
  const row = logits.subarray(i * V, (i + 1) * V);
  const u = uniform(plan.seed, r, position);
  if (plan.mode === "exact") return sampleToken(row, plan.params, u);
  return drawCategorical(appleProbs(row, plan.params.temperature), u);
}

/**
 * Prefill every row with its prompt (logits of the last token only) and commit it. starts[r] prompt tokens
 * of row r are already in the session (a PromptCache hit): only the rest is fed, and hidden[r] covers
 * those tokens only.
 */
export async function prefill(
  session: TargetSession,
  prompts: ArrayLike<number>[],
  logits: LogitsMode,
  starts?: number[],
): Promise<ForwardOutput> {
  const rows: RowInput[] = prompts.map((p, r) => {
    const start = starts?.[r] ?? 0;
    const n = p.length - start;
    const positions = new Int32Array(n);
    const tokens = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      positions[i] = start + i;
      tokens[i] = p[start + i];
    }
    return { tokens, positions, logitIndices: Int32Array.of(n - 1) };
  });
  const out = await session.forward({ rows, logits });
  session.commit(prompts.map(() => null));
  return out;
}

export function makeRows(
  prompts: ArrayLike<number>[],
  opts: GenerateOptions,
  eosDefault: number[],
): RowOutput[] {
  const eos = new Set(opts.eosIds ?? eosDefault);
  return prompts.map((_, r) => new RowOutput(r, opts.maxNewTokens, eos, opts.stop ?? [], opts.decode));
}

export function finalResult(
  rows: RowOutput[],
  opts: GenerateOptions,
  metrics: MetricsRecorder,
): GenerateResult {
  const result: GenerateResult = {
    ids: rows.map((r) => r.ids.slice()),
    finish: rows.map((r) => r.finish),
    metrics: metrics.summarize(rows.map((r) => r.ids.length)),
  };
  if (opts.decode) result.text = rows.map((r) => r.finalText());
  return result;
}

/**
 * The session of a call: the PromptCache's (batch 1; starts = prompt tokens it already holds) or a fresh
 * one of `capacity` slots.
 */
export function openSession(
  target: TargetModel,
  prompts: ArrayLike<number>[],
  capacity: number,
  cache: PromptCache | undefined,
): { session: TargetSession; starts: number[] } {
  if (!cache) {
    return {
      session: target.createSession(prompts.length, capacity),
      starts: prompts.map(() => 0),
    };
  }
  const { session, start } = openFromCache(target, cache, prompts[0], capacity);
  return { session, starts: [start] };
}

/**
 * Hand a session back after a call: dispose it, unless a PromptCache keeps it. A cached session whose call
 * failed between a forward and its commit is in an unknown state: the cache drops it.
 */
export function closeSession(session: TargetSession, cache: PromptCache | undefined, broken: boolean): void {
  if (!cache) session.dispose();
  else if (broken) cache.dispose();
}

/**
 * Autoregressive generation, streamed: yields one TokenEvent per row per step (rows that emitted nothing
 * are skipped) and returns the final result. prompts are token ids; row r of the batch is prompts[r].
 */
export async function* generateStream(
  target: TargetModel,
  prompts: ArrayLike<number>[],
  opts: GenerateOptions,
): AsyncGenerator<TokenEvent, GenerateResult> {
  const V = target.config.vocabSize;
  checkGenerateOptions(opts, prompts, V);
  const plan = resolveSampling(opts.sampling);
  const B = prompts.length;
  const maxPrompt = Math.max(...prompts.map((p) => p.length));
  const rows = makeRows(prompts, opts, target.config.eosTokenIds);
  const metrics = new MetricsRecorder(prompts.map((p) => p.length), 1, opts.now);
  const now = metrics.now;
  const { session, starts } = openSession(target, prompts, maxPrompt + opts.maxNewTokens + 1, opts.cache);
  const cached = opts.cache?.ids;
  let broken = true; // until the prefill is committed, and between each forward and its commit
  try {
    const mode = logitsModeFor(plan);
    let t0 = now();
    const first = await prefill(session, prompts, mode, starts);
    cached?.push(...Array.from(prompts[0]).slice(starts[0]));
    broken = false;
    metrics.prompt(now() - t0);
    // pos[r] = absolute position of row r's latest token (not yet in the cache).
    const pos = prompts.map((p) => p.length);
    const last = new Int32Array(B);
    for (let r = 0; r < B; r++) {
      last[r] = pickToken(first, r, 0, plan, pos[r], V);
      const ev = rows[r].push(0, [last[r]], [false]);
      if (rows[r].done) metrics.rowDone(r);
      if (ev) yield ev;
    }
    for (let step = 1; rows.some((r) => !r.done); step++) {
      t0 = now();
      const inputs: RowInput[] = rows.map((row, r) =>
        row.done
          ? { tokens: new Int32Array(0), positions: new Int32Array(0) }
          : { tokens: Int32Array.of(last[r]), positions: Int32Array.of(pos[r]) }
      );
      broken = true;
      const out = await session.forward({ rows: inputs, logits: mode });
      session.commit(rows.map(() => null));
      cached?.push(last[0]);
      broken = false;
      const t1 = now();
      const events: TokenEvent[] = [];
      for (let r = 0; r < B; r++) {
        if (rows[r].done) continue;
        pos[r]++;
        last[r] = pickToken(out, r, 0, plan, pos[r], V);
        metrics.rowStep(r, 0);
        const ev = rows[r].push(step, [last[r]], [false]);
        if (rows[r].done) metrics.rowDone(r);
        if (ev) events.push(ev);
      }
      metrics.step(0, t1 - t0, now() - t1);
      for (const ev of events) yield ev;
    }
    return finalResult(rows, opts, metrics);
  } finally {
    closeSession(session, opts.cache, broken);
  }
}

/** Autoregressive generation; returns the final result. */
export async function generate(
  target: TargetModel,
  prompts: ArrayLike<number>[],
  opts: GenerateOptions,
): Promise<GenerateResult> {
  return await drain(generateStream(target, prompts, opts));
}

/** Run a stream to its end and return its result, optionally seeing every event. */
export async function drain<R>(
  gen: AsyncGenerator<TokenEvent, R>,
  onEvent?: (ev: TokenEvent) => void,
): Promise<R> {
  for (;;) {
    const it = await gen.next();
    if (it.done) return it.value;
    onEvent?.(it.value);
  }
}
