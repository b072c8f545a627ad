/**
 * The ReDrafter loop (redrafter.md section 6, with per-row KV lengths instead of left-pad realignment):
 * prefill -> first token -> rounds of { beam search (or a draft tree) -> pack -> one target forward over
 * every row's tree -> verify -> commit the accepted path } until every row stops. A round emits the accepted
 * drafts plus the target's own next token; that token and the hidden state of the last accepted token (beam
 * index n, not n + 1: trap 10.2) seed the next round.
 *
 * @module
 */

import { beamAncestry, beamSearch, type BeamSearchResult, checkBeamShape } from "./beam_search.ts";
import {
  closeSession,
  drain,
  finalResult,
  logitsModeFor,
  makeRows,
  openSession,
  pickToken,
  prefill,
} from "./generate.ts";
import { MetricsRecorder } from "./metrics.ts";
import {
  checkGenerateOptions,
  type GenerateResult,
  resolveSampling,
  type SamplingPlan,
  type SpeculativeOptions,
  type TokenEvent,
} from "./options.ts";
import { appleProbs, drawCategorical, sampleToken, uniform } from "./sampling.ts";
import { chainBeams, packBeams, type PackedTree } from "./tree.ts";
import { checkLookupOptions, lookupBeams, lookupDraft } from "./lookup.ts";
import { RoundChooser, type RoundKind } from "./adaptive.ts";
import { checkDraftTree, type DraftTreeResult, treeSearch } from "./draft_tree.ts";
import type { DraftModel, ForwardOutput, RowInput, TargetModel } from "./types.ts";
import { type Acceptance, appleAccept, walkTree } from "./verify.ts";

/** A row's lookup drafts in a plain round: none, so its tree is the next token alone. */
const NO_DRAFTS = new Int32Array(0);

/** Apple-rule uniform streams: 0 draws the emitted token, 1 + w the ratio test of beam w. */
const APPLE_ACCEPT_STREAM = 1;

/**
 * Speculative generation, streamed: yields one TokenEvent per row per round (drafted flags mark accepted
 * drafts) and returns the final result with metrics.
 */
export async function* speculativeStream(
  target: TargetModel,
  drafter: DraftModel,
  prompts: ArrayLike<number>[],
  opts: SpeculativeOptions,
): AsyncGenerator<TokenEvent, GenerateResult> {
  const V = target.config.vocabSize;
  checkGenerateOptions(opts, prompts, V);
  const W = opts.beamWidth, L = opts.beamLength;
  checkBeamShape(W, L, V);
  if (drafter.config.vocabSize !== V) {
    throw new Error(`drafter vocabSize ${drafter.config.vocabSize} != target vocabSize ${V} (trap 10.20)`);
  }
  const plan = resolveSampling(opts.sampling);
  const useTree = opts.tree ?? true;
  const lookup = opts.lookup;
  if (lookup) {
    checkLookupOptions(lookup);
    if (plan.mode === "apple") {
      throw new Error("lookup drafts need greedy or exact sampling: the Apple rule reads the drafter's Q");
    }
  }
  const draftTree = opts.draftTree;
  if (draftTree) {
    checkDraftTree(draftTree, W);
    if (plan.mode === "apple") {
      throw new Error("draftTree needs greedy or exact sampling: the Apple rule reads beam search's Q rows");
    }
    if (!useTree) throw new Error("draftTree needs tree verification (tree: true)");
  }
  if (opts.adaptive && plan.mode === "apple") {
    throw new Error("adaptive drafting needs greedy or exact sampling: the Apple rule reads every round's Q");
  }
  const chooser = opts.adaptive === true ? new RoundChooser() : opts.adaptive || null;
  // The longest branch: the lookup one when it drafts more than the drafter's beams.
  const Lmax = lookup ? Math.max(L, 1 + lookup.maxDrafts) : L;
  const B = prompts.length;
  const maxPrompt = Math.max(...prompts.map((p) => p.length));
  const rows = makeRows(prompts, opts, target.config.eosTokenIds);
  const metrics = new MetricsRecorder(prompts.map((p) => p.length), Lmax, opts.now);
  const now = metrics.now;
  const { session, starts } = openSession(
    target,
    prompts,
    maxPrompt + opts.maxNewTokens + Math.max(W * L, draftTree ? draftTree.nodes + 1 : 0) + Lmax,
    opts.cache,
  );
  // Per row, every token so far (prompt, then the target's): what lookup drafts search.
  const history: number[][] | null = lookup ? prompts.map((p) => Array.from(p)) : null;
  const cached = opts.cache?.ids;
  let broken = true; // until the prefill is committed, and between each forward and its commit
  try {
    const mode = logitsModeFor(plan);
    let t0 = now();
    const first = await prefill(session, prompts, mode, starts);
    cached?.push(...Array.from(prompts[0]).slice(starts[0]));
    broken = false;
    metrics.prompt(now() - t0);
    const H = hiddenSize(first, prompts.map((p, r) => p.length - starts[r]), drafter);
    // Per row: committed length (= absolute position of `next`), next token, context hidden [H].
    const committed = prompts.map((p) => p.length);
    const next = new Int32Array(B);
    const ctx = new Float32Array(B * H);
    for (let r = 0; r < B; r++) {
      const n = prompts[r].length - starts[r]; // tokens fed by the prefill
      ctx.set(first.hidden[r].subarray((n - 1) * H, n * H), r * H);
      next[r] = pickToken(first, r, 0, plan, committed[r], V);
      history?.[r].push(next[r]);
      const ev = rows[r].push(0, [next[r]], [false]);
      if (rows[r].done) metrics.rowDone(r);
      if (ev) yield ev;
    }
    for (let step = 1; rows.some((r) => !r.done); step++) {
      // --- draft: lookup drafts, then beam search for the rows the drafter serves (compacted into a
      // dense drafter batch; drafterRow[r] is row r's index there, -1 for none)
      t0 = now();
      // A plain round verifies each row's next token alone: no lookup, no drafter.
      const kind: RoundKind = chooser ? chooser.next() : "draft";
      const plain = kind === "plain";
      const found: (Int32Array | null)[] = new Array(B).fill(plain ? NO_DRAFTS : null);
      if (history && !plain) {
        for (let r = 0; r < B; r++) {
          if (rows[r].done) continue;
          const f = lookupDraft(history[r], lookup!);
          if (f.length > 0) found[r] = f;
        }
      }
      const lookupFirst = lookup?.mode === "first";
      const drafterRow = new Int32Array(B).fill(-1);
      const served: number[] = [];
      for (let r = 0; r < B; r++) {
        if (plain || rows[r].done || (lookupFirst && found[r])) continue;
        drafterRow[r] = served.length;
        served.push(r);
      }
      let drafted: BeamSearchResult | DraftTreeResult | null = null;
      if (served.length > 0) {
        const dctx = new Float32Array(served.length * H);
        const init = new Int32Array(served.length);
        served.forEach((r, a) => {
          dctx.set(ctx.subarray(r * H, (r + 1) * H), a * H);
          init[a] = next[r];
        });
        drafted = draftTree
          ? await treeSearch(drafter, dctx, init, W, L - 1, draftTree)
          : await beamSearch(drafter, dctx, init, W, L);
      }
      const t1 = now();
      // --- verify: one target forward over every active row's tree
      const trees: (PackedTree | null)[] = new Array(B).fill(null);
      const inputs: RowInput[] = [];
      for (let r = 0; r < B; r++) {
        if (rows[r].done) {
          inputs.push({ tokens: new Int32Array(0), positions: new Int32Array(0) });
          continue;
        }
        const a = drafterRow[r];
        const Wd = drafted?.width ?? W; // a tree's beams are its leaves: their count varies by round
        const { beams, width, length } = lookupBeams(
          a < 0 ? null : drafted!.beams.subarray(a * Wd * L, (a + 1) * Wd * L),
          Wd,
          L,
          next[r],
          found[r],
        );
        const tree = useTree ? packBeams(beams, width, length) : chainBeams(beams, width, length);
        trees[r] = tree;
        const positions = new Int32Array(tree.depth.length);
        for (let i = 0; i < positions.length; i++) positions[i] = committed[r] + tree.depth[i];
        inputs.push({ tokens: tree.tokens, positions, parents: tree.parents });
      }
      broken = true;
      const out = await session.forward({ rows: inputs, logits: mode });
      const t2 = now();
      // --- accept: per row, walk the tree, commit the accepted path, carry hidden + next token
      const keep: (Int32Array | null)[] = new Array(B).fill(null);
      const events: TokenEvent[] = [];
      let produced = 0; // new tokens over all rows this round (for the chooser)
      for (let r = 0; r < B; r++) {
        const tree = trees[r];
        if (!tree) continue;
        const beamsQ = drafted && "round" in drafted ? drafted : null;
        const acc = accept(tree, out, r, drafterRow[r], beamsQ, plan, committed[r], V);
        keep[r] = acc.path;
        if (cached) { for (let k = 0; k <= acc.accepted; k++) cached.push(tree.tokens[acc.path[k]]); }
        const last = acc.path[acc.accepted];
        ctx.set(out.hidden[r].subarray(last * H, (last + 1) * H), r * H);
        committed[r] += acc.accepted + 1;
        produced += acc.accepted + 1;
        next[r] = acc.next;
        metrics.rowStep(r, acc.accepted);
        const toks: number[] = [], flags: boolean[] = [];
        for (let k = 1; k <= acc.accepted; k++) {
          toks.push(tree.tokens[acc.path[k]]);
          flags.push(true);
        }
        toks.push(acc.next);
        flags.push(false);
        history?.[r].push(...toks);
        const ev = rows[r].push(step, toks, flags);
        if (rows[r].done) metrics.rowDone(r);
        if (ev) events.push(ev);
      }
      session.commit(keep);
      broken = false;
      const t3 = now();
      metrics.step(t1 - t0, t2 - t1, t3 - t2);
      if (plain) metrics.plainStep();
      chooser?.record(kind, t3 - t0, produced);
      for (const ev of events) yield ev;
    }
    return finalResult(rows, opts, metrics);
  } finally {
    closeSession(session, opts.cache, broken);
  }
}

/** Speculative generation; returns the final result. */
export async function speculativeGenerate(
  target: TargetModel,
  drafter: DraftModel,
  prompts: ArrayLike<number>[],
  opts: SpeculativeOptions,
): Promise<GenerateResult> {
  return await drain(speculativeStream(target, drafter, prompts, opts));
}

/** H from the prefill output (fed[r] tokens per row); it must match the drafter's context width. */
function hiddenSize(first: ForwardOutput, fed: number[], drafter: DraftModel): number {
  const H = first.hidden[0].length / fed[0];
  if (!Number.isInteger(H) || H <= 0) {
    throw new Error(`target forward returned ${first.hidden[0].length} hidden values for ${fed[0]} tokens`);
  }
  if (H !== drafter.config.hiddenSize) {
    throw new Error(`drafter hiddenSize ${drafter.config.hiddenSize} != target hidden size ${H}`);
  }
  return H;
}

/**
 * Verify one row. r = batch row (uniform stream key), a = the row's index in the drafter batch (-1: lookup
 * drafts only), base = the row's committed length (absolute position of the tree's root token).
 */
function accept(
  tree: PackedTree,
  out: ForwardOutput,
  r: number,
  a: number,
  drafted: BeamSearchResult | null,
  plan: SamplingPlan,
  base: number,
  V: number,
): Acceptance {
  if (plan.mode === "greedy") {
    const ids = out.topIds?.[r];
    if (!ids || ids.length < tree.tokens.length) {
      throw new Error(
        `target forward returned ${ids?.length ?? 0} top-1 ids for row ${r}, expected ${tree.tokens.length}`,
      );
    }
    return walkTree(tree, (node) => ids[node]);
  }
  const logits = out.logits?.[r];
  if (!logits || logits.length < tree.tokens.length * V) {
    throw new Error(
      `target forward returned no full logits for the ${tree.tokens.length} tree tokens of row ${r}`,
    );
  }
  const rowAt = (node: number) => logits.subarray(node * V, (node + 1) * V);
  if (plan.mode === "exact") {
    return walkTree(
      tree,
      (node, depth) => sampleToken(rowAt(node), plan.params, uniform(plan.seed, r, base + depth + 1)),
    );
  }
  if (!drafted || a < 0) throw new Error(`row ${r}: the Apple rule needs the drafter's beams`);
  const probs = new Map<number, Float64Array>();
  const ancestry = new Map<number, Int32Array>();
  return appleAccept(tree, {
    probsAt(node) {
      let p = probs.get(node);
      if (!p) probs.set(node, p = appleProbs(rowAt(node), plan.params.temperature));
      return p;
    },
    logQ(w, k) {
      let slots = ancestry.get(w);
      if (!slots) ancestry.set(w, slots = beamAncestry(drafted, a, w));
      return drafted.round.logProbRow(k, a, slots[k]);
    },
    decide: (ratio, w, k) => uniform(plan.seed, r, base + k + 1, APPLE_ACCEPT_STREAM + w) < ratio,
    draw: (weights, n) => drawCategorical(weights, uniform(plan.seed, r, base + n + 1)),
  });
}
