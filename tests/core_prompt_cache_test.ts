/**
 * PromptCache: a chat's next turn feeds only what the cache does not hold, and the output is exactly what an
 * uncached call gives (greedy and exact sampling, autoregressive and ReDrafter), on the toy target and on
 * the CPU backend with the embedded default pair.
 */
import assert from "node:assert/strict";
import { generate, generateStream } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import { PromptCache } from "../core/prompt_cache.ts";
import type { GenerateOptions, GenerateResult } from "../core/options.ts";
import type { DraftModel, TargetModel } from "../core/types.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";

type Run = (t: TargetModel, p: number[], o: GenerateOptions) => Promise<GenerateResult>;

function runners(d: DraftModel): [string, Run][] {
  return [
    ["autoregressive", (t, p, o) => generate(t, [p], o)],
    ["redrafter W=3 L=4", (t, p, o) => speculativeGenerate(t, d, [p], { ...o, beamWidth: 3, beamLength: 4 })],
  ];
}

for (const sampling of [undefined, { temperature: 0.9, topK: 6, seed: 5 }]) {
  const how = sampling ? "exact sampling" : "greedy";
  Deno.test(`PromptCache (${how}): turns equal uncached calls and feed only the new tokens`, async () => {
    const t = new ToyTarget({ vocab: 20, eos: [] });
    for (const [name, run] of runners(new ToyDrafter(t, { kind: "random", salt: 3, scale: 4 }))) {
      const cache = new PromptCache();
      const opts = { maxNewTokens: 12, sampling };
      let prompt = [2, 3, 4, 5];
      for (let turn = 0; turn < 4; turn++) {
        const plain = await run(t, prompt, opts);
        const before = t.tokensIn;
        const got = await run(t, prompt, { ...opts, cache });
        assert.deepEqual(got.ids, plain.ids, `${name} turn ${turn}`);
        if (turn > 0) {
          // Everything but the previous answer's last token (never fed) and this turn's new text is cached.
          assert.equal(cache.reused, prompt.length - 4, `${name} turn ${turn}: reused`);
          if (name === "autoregressive") {
            assert.equal(t.tokensIn - before, 4 + got.ids[0].length - 1, `${name} turn ${turn}: fed`);
          }
        }
        assert.equal(cache.session!.lengths()[0], cache.ids.length);
        // The next turn: this answer plus three new "user" tokens.
        prompt = [...prompt, ...got.ids[0], 7, 8, 9];
      }
      cache.dispose();
      assert.equal(cache.session, null);
    }
  });
}

Deno.test("PromptCache: a prompt that diverges early, one that is a prefix, and one that outgrows the session", async () => {
  const t = new ToyTarget({ vocab: 20, eos: [] });
  const cache = new PromptCache();
  const first = await generate(t, [[2, 3, 4, 5, 6, 7]], { maxNewTokens: 5, cache });
  const s0 = cache.session;
  for (const p of [[2, 3, 9, 9], [2, 3, 4], [2], Array.from({ length: 600 }, (_, i) => (i * 7) % 20)]) {
    const plain = await generate(t, [p], { maxNewTokens: 5 });
    const got = await generate(t, [p], { maxNewTokens: 5, cache });
    assert.deepEqual(got.ids, plain.ids, `prompt of ${p.length}`);
  }
  assert.notEqual(cache.session, s0, "the 600-token prompt needed a bigger session");
  assert.ok(first.ids[0].length === 5);
  cache.dispose();
});

Deno.test("PromptCache: stopping a stream early leaves a consistent cache; batch 2 is refused", async () => {
  const t = new ToyTarget({ vocab: 20, eos: [] });
  const cache = new PromptCache();
  const gen = generateStream(t, [[2, 3, 4]], { maxNewTokens: 50, cache });
  for (let i = 0; i < 5; i++) await gen.next();
  await gen.return(undefined as unknown as GenerateResult);
  assert.equal(cache.session!.lengths()[0], cache.ids.length);
  const p = [...cache.ids, 11, 12];
  assert.deepEqual(
    (await generate(t, [p], { maxNewTokens: 6, cache })).ids,
    (await generate(t, [p], { maxNewTokens: 6 })).ids,
  );
  assert.equal(cache.reused, p.length - 2);
  await assert.rejects(
    generate(t, [[1], [2]], { maxNewTokens: 2, cache }),
    /a PromptCache serves one prompt at a time, got 2/,
  );
  cache.dispose();
});

Deno.test("PromptCache on the CPU backend, default pair: ReDrafter turns equal uncached calls", async () => {
  const { loadCheckpoint } = await import("../loader/checkpoint.ts");
  const { createCpuModel } = await import("../backends/cpu/mod.ts");
  const { loadDrafter } = await import("../drafter/load.ts");
  const root = new URL("../models/default/", import.meta.url).pathname;
  const ck = await loadCheckpoint(`${root}target`);
  const target = createCpuModel(ck);
  const drafter = await loadDrafter(`${root}drafter`, target);
  const cache = new PromptCache();
  let prompt = [1, 450, 1330, 288, 264, 1120];
  for (let turn = 0; turn < 3; turn++) {
    const opts = { maxNewTokens: 20, beamWidth: 2, beamLength: 3 };
    const plain = await speculativeGenerate(target, drafter, [prompt], opts);
    const got = await speculativeGenerate(target, drafter, [prompt], { ...opts, cache });
    assert.deepEqual(got.ids, plain.ids, `turn ${turn}`);
    if (turn > 0) assert.ok(cache.reused >= prompt.length - 4, `turn ${turn}: reused ${cache.reused}`);
    prompt = [...prompt, ...got.ids[0], 271, 90];
  }
  cache.dispose();
  target.dispose();
  ck.tensors.close();
});
