/**
 * Dynamic draft trees (core/draft_tree.ts): the trees treeSearch grows equal a plain re-derivation that
 * drafts every path alone (so the batched slots and parents are right), are ancestor-closed and best-first;
 * ReDrafter with them stays token-identical to autoregression (greedy and exact sampling, batch 1 and 3,
 * with lookup drafts, rows ending on EOS), verifies 1 + nodes tokens per round, and refuses what it can't do.
 */
import assert from "node:assert/strict";
import {
  checkDraftTree,
  defaultTreeChildren,
  type DraftTreeOptions,
  treeSearch,
} from "../core/draft_tree.ts";
import { END, packBeams } from "../core/tree.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import type { SpeculativeOptions } from "../core/options.ts";
import type { DraftModel } from "../core/types.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";
import { defaultDrafter, defaultTarget } from "./support/default_pair.ts";

interface RefNode {
  path: number[]; // drafted tokens from the root's child down to this node
  score: number;
  order: number; // creation order
}

/** The K likeliest next tokens after init + path, from a fresh one-beam round (no batching, no slots). */
async function topAfter(
  drafter: DraftModel,
  ctx: Float32Array,
  init: number,
  path: number[],
  K: number,
): Promise<{ ids: Int32Array; logProbs: Float32Array }> {
  const round = drafter.beginRound(ctx, 1, 1);
  let top = await round.step(Int32Array.of(init), Int32Array.of(0), K);
  for (const t of path) top = await round.step(Int32Array.of(t), Int32Array.of(0), K);
  return top;
}

/** The tree the module comment describes, derived one path at a time; returns its beams best-first. */
async function referenceTree(
  drafter: DraftModel,
  ctx: Float32Array,
  init: number,
  M: number,
  D: number,
  o: DraftTreeOptions,
): Promise<number[][]> {
  const K = o.children ?? M;
  const all: RefNode[] = [];
  const byScore = (a: RefNode, b: RefNode) => b.score - a.score || a.order - b.order;
  let frontier: RefNode[] = [{ path: [], score: 0, order: -1 }];
  for (let s = 0; s < D; s++) {
    const created: RefNode[] = [];
    for (const f of frontier) {
      const top = await topAfter(drafter, ctx, init, f.path, K);
      for (let j = 0; j < K; j++) {
        created.push({ path: [...f.path, top.ids[j]], score: f.score + top.logProbs[j], order: all.length });
        all.push(created[created.length - 1]);
      }
    }
    frontier = [...created].sort(byScore).slice(0, M);
  }
  const kept = [...all].sort(byScore).slice(0, o.nodes);
  const key = (p: number[]) => p.join(",");
  const keptKeys = new Set(kept.map((n) => key(n.path)));
  for (const n of kept) {
    if (n.path.length > 1) {
      assert.ok(keptKeys.has(key(n.path.slice(0, -1))), "reference tree is ancestor-closed");
    }
  }
  const leaves = kept.filter((n) =>
    !kept.some((c) => c.path.length === n.path.length + 1 && key(c.path.slice(0, -1)) === key(n.path))
  );
  return leaves.map((n) => [init, ...n.path]);
}

/** Row b's beams from a result, END padding removed, repeated padding beams dropped. */
function rowBeams(beams: Int32Array, b: number, W: number, L: number): number[][] {
  const out: number[][] = [];
  for (let w = 0; w < W; w++) {
    const beam = Array.from(beams.subarray((b * W + w) * L, (b * W + w + 1) * L)).filter((t) => t !== END);
    if (!out.some((x) => x.join() === beam.join())) out.push(beam);
  }
  return out;
}

Deno.test("treeSearch: equals the tree derived path by path, per row of a batch, best leaf first", async () => {
  const t = new ToyTarget({ vocab: 12, eos: [] });
  const d = new ToyDrafter(t, { kind: "random", salt: 7, scale: 3 });
  const B = 3, H = t.H;
  const ctx = Float32Array.from({ length: B * H }, (_, i) => Math.sin(i * 1.7));
  const init = Int32Array.of(3, 5, 3);
  for (
    const [M, D, nodes, children] of [[1, 1, 1, 1], [2, 3, 5, 2], [3, 4, 8, 3], [4, 3, 20, 2], [2, 5, 6, 4]]
  ) {
    const o = { nodes, children };
    const r = await treeSearch(d, ctx, init, M, D, o);
    assert.equal(r.length, D + 1);
    assert.equal(r.beams.length, B * r.width * r.length);
    for (let b = 0; b < B; b++) {
      const want = await referenceTree(d, ctx.subarray(b * H, (b + 1) * H), init[b], M, D, o);
      const got = rowBeams(r.beams, b, r.width, r.length);
      assert.deepEqual(got, want, `M=${M} D=${D} nodes=${nodes} children=${children} row ${b}`);
      // Packed, the tree holds the init token and exactly the kept nodes.
      const packed = packBeams(
        r.beams.subarray(b * r.width * r.length, (b + 1) * r.width * r.length),
        r.width,
        r.length,
      );
      assert.equal(packed.tokens.length, 1 + r.kept[b], `row ${b} packs 1 + kept tokens`);
      let created = 0;
      for (let s = 0, c = 1; s < D; s++) created += c = Math.min(M, c) * children;
      assert.equal(r.kept[b], Math.min(nodes, created), `row ${b} keeps min(nodes, created)`);
    }
  }
});

Deno.test("treeSearch: one node is the drafter's greedy token; a wide budget keeps every created node", async () => {
  const t = new ToyTarget({ vocab: 10, eos: [] });
  const d = new ToyDrafter(t, { kind: "random", salt: 11, scale: 3 });
  const ctx = Float32Array.from({ length: t.H }, (_, i) => Math.cos(i));
  const one = await treeSearch(d, ctx, Int32Array.of(4), 3, 3, { nodes: 1, children: 3 });
  const top = await topAfter(d, ctx, 4, [], 1);
  assert.deepEqual(rowBeams(one.beams, 0, one.width, one.length), [[4, top.ids[0]]]);
  // 2 children, 2 expanded per step, 3 steps: 2 + 4 + 4 = 10 nodes created; all kept under a budget of 64.
  const all = await treeSearch(d, ctx, Int32Array.of(4), 2, 3, { nodes: 64, children: 2 });
  assert.equal(all.kept[0], 10);
});

const prompts = [[2, 3, 4], [5, 0], [2, 0, 1, 2, 3, 4, 5]];

Deno.test("draft trees: token-identical to AR, greedy and exact sampling, batch 1 and 3, with lookup drafts", async () => {
  const t = new ToyTarget({ vocab: 8, eos: [], scale: 2 });
  for (const sampling of [undefined, { mode: "exact" as const, temperature: 1, seed: 4 }]) {
    const ar = await generate(t, prompts, { maxNewTokens: 40, sampling });
    for (const [W, L, nodes, children] of [[1, 2, 1, 1], [2, 4, 5, 2], [3, 5, 9, 3], [4, 3, 12, 4]]) {
      for (const lookup of [undefined, { maxDrafts: 3 }, { maxDrafts: 2, mode: "first" as const }]) {
        for (const kind of ["random", "oracle"] as const) {
          const opts: SpeculativeOptions = {
            maxNewTokens: 40,
            beamWidth: W,
            beamLength: L,
            sampling,
            lookup,
            draftTree: { nodes, children },
          };
          const what = `${sampling?.mode ?? "greedy"} ${kind} W=${W} L=${L} nodes=${nodes} lookup=${
            lookup?.mode ?? (lookup ? "branch" : "none")
          }`;
          const d = new ToyDrafter(t, { kind, salt: 3, scale: 4 });
          const res = await speculativeGenerate(t, d, prompts, opts);
          assert.deepEqual(res.ids, ar.ids, what);
          assert.deepEqual(res.finish, ar.finish, what);
          if (kind === "oracle" && !sampling && nodes >= L - 1) {
            assert.ok(
              res.metrics.tau > 1.5,
              `${what}: tau ${res.metrics.tau} with a drafter that knows the target`,
            );
          }
          const p = prompts[2];
          const one = await generate(t, [p], { maxNewTokens: 40, sampling });
          const alone = await speculativeGenerate(
            t,
            new ToyDrafter(t, { kind, salt: 3, scale: 4 }),
            [p],
            opts,
          );
          assert.deepEqual(alone.ids, one.ids, `${what} alone`);
        }
      }
    }
  }
});

Deno.test("draft trees: each round verifies the init token plus the kept nodes; EOS mid-round ends as in AR", async () => {
  const t = new ToyTarget({ vocab: 12, eos: [], scale: 2 });
  const d = new ToyDrafter(t, { kind: "random", salt: 5, scale: 4 });
  const before = t.tokensIn;
  // 3 children per node over 3 steps create 3 + 9 + 9 nodes: a budget of 7 is always filled.
  const res = await speculativeGenerate(t, d, [[2, 3]], {
    maxNewTokens: 30,
    beamWidth: 3,
    beamLength: 4,
    draftTree: { nodes: 7, children: 3 },
  });
  const prefill = 2;
  assert.equal(
    t.tokensIn - before,
    prefill + res.metrics.steps * 8,
    `${res.metrics.steps} rounds of 8 tokens`,
  );
  const te = new ToyTarget({ vocab: 12, eos: [3], scale: 2 });
  for (const sampling of [undefined, { mode: "exact" as const, temperature: 1, seed: 9 }]) {
    const ar = await generate(te, prompts, { maxNewTokens: 30, sampling });
    assert.ok(ar.finish.includes("eos"), `some row stops on EOS: ${ar.finish}`);
    const res2 = await speculativeGenerate(
      te,
      new ToyDrafter(te, { kind: "random", salt: 5, scale: 4 }),
      prompts,
      {
        maxNewTokens: 30,
        beamWidth: 2,
        beamLength: 4,
        sampling,
        draftTree: { nodes: 6 },
      },
    );
    assert.deepEqual(res2.ids, ar.ids, sampling?.mode ?? "greedy");
    assert.deepEqual(res2.finish, ar.finish);
  }
});

Deno.test("draft trees: bad options are named; the Apple rule and chain verification are refused", async () => {
  assert.throws(() => checkDraftTree({ nodes: 0 }, 2), /draftTree.nodes must be an integer in 1..256, got 0/);
  assert.throws(() => checkDraftTree({ nodes: 300 }, 2), /draftTree.nodes/);
  assert.throws(
    () => checkDraftTree({ nodes: 4, children: 51 }, 2),
    /draftTree.children must be an integer in 1..50, got 51/,
  );
  assert.throws(
    () => checkDraftTree({ nodes: 4 }, 60),
    /draftTree.children \(default: beamWidth\) must be an integer in 1..50, got 60/,
  );
  // The CLIs' default stays within the maximum.
  assert.equal(defaultTreeChildren(60), 50);
  assert.equal(defaultTreeChildren(3), 3);
  checkDraftTree({ nodes: 4, children: defaultTreeChildren(60) }, 60);
  const t = new ToyTarget({ vocab: 6, eos: [1] });
  const d = new ToyDrafter(t, { kind: "random", salt: 3, scale: 4 });
  const base = { maxNewTokens: 4, beamWidth: 2, beamLength: 3, draftTree: { nodes: 4 } };
  await assert.rejects(
    () =>
      speculativeGenerate(t, d, [[2, 3]], { ...base, sampling: { mode: "apple", temperature: 1, seed: 0 } }),
    /draftTree needs greedy or exact sampling/,
  );
  await assert.rejects(
    () => speculativeGenerate(t, d, [[2, 3]], { ...base, tree: false }),
    /draftTree needs tree verification/,
  );
  await assert.rejects(
    () => speculativeGenerate(t, d, [[2, 3]], { ...base, draftTree: { nodes: 2.5 } }),
    /draftTree.nodes must be an integer/,
  );
});

Deno.test("draft trees on the default pair: identical to AR, more tokens accepted per round than beams of as many nodes", async () => {
  const target = await defaultTarget();
  const drafter = await defaultDrafter(target);
  const prompt = [[1, 464, 1001, 12, 300, 52, 9], [1, 1220, 88, 7, 640, 31]];
  const opts = { maxNewTokens: 48, eosIds: [] as number[] };
  const ar = await generate(target, prompt, opts);
  // Beams 4 x 4 verify up to 1 + 4 * 3 = 13 tokens; the tree verifies 1 + 12.
  const beams = await speculativeGenerate(target, drafter, prompt, { ...opts, beamWidth: 4, beamLength: 4 });
  const tree = await speculativeGenerate(target, drafter, prompt, {
    ...opts,
    beamWidth: 4,
    beamLength: 6,
    draftTree: { nodes: 12, children: 4 },
  });
  assert.deepEqual(beams.ids, ar.ids);
  assert.deepEqual(tree.ids, ar.ids);
  assert.ok(
    tree.metrics.tau > beams.metrics.tau,
    `tau ${tree.metrics.tau} (tree) vs ${beams.metrics.tau} (beams)`,
  );
  drafter.dispose();
});
