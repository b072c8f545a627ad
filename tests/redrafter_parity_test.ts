// ReDrafter on the real CPU backend, every fixture architecture (Llama with GQA + llama3 RoPE, Qwen2 with
// biases, Mistral with a 6-token sliding window): greedy output is identical to autoregression at batch 1 and
// at batch 3 with prompts of different lengths and rows that finish at different times; exact sampling is
// identical to autoregressive sampling with the same seed. Random drafters with a wide beam (W = 64 of a
// 128-token vocabulary) get drafts accepted often enough that commit paths of every depth run.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { loadDrafter } from "../drafter/load.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import type { SamplingOptions } from "../core/options.ts";
import { makeRandomDrafter } from "../tools/make_random_drafter.ts";

const FIXTURES = fileURLToPath(new URL("./fixtures/models/", import.meta.url));
const PROMPTS = [[1, 17, 42], [1, 5, 63, 120, 8, 77, 31], [1, 17, 42, 99, 5, 63, 120, 8, 77, 31, 2, 54]];

async function pair(arch: string) {
  const ckpt = await loadCheckpoint(FIXTURES + arch);
  const target = createCpuModel(ckpt);
  const dir = await Deno.makeTempDir();
  makeRandomDrafter(FIXTURES + arch, dir, { seed: 7, layers: 1 });
  const drafter = await loadDrafter(dir, target);
  return { target, drafter, dir };
}

for (const arch of ["llama", "qwen2", "mistral"]) {
  Deno.test(`ReDrafter greedy == autoregressive on ${arch}, batch 1 and ragged batch 3`, async () => {
    const { target, drafter, dir } = await pair(arch);
    try {
      // An EOS id that row 1 emits early and the other rows never emit, so rows end at different times.
      const probe = await generate(target, PROMPTS, { maxNewTokens: 20, eosIds: [] });
      const eos = probe.ids[1].slice(2).find((t) => !probe.ids[0].includes(t) && !probe.ids[2].includes(t));
      assert.ok(eos !== undefined, "row 1 has a token of its own");
      const opts = { maxNewTokens: 20, eosIds: [eos] };
      const ar = await generate(target, PROMPTS, opts);
      assert.ok(ar.finish.includes("eos") && ar.finish.includes("length"), `finish ${ar.finish}`);
      let accepted = 0;
      for (const [W, L] of [[1, 2], [4, 3], [64, 4]]) {
        const spec = await speculativeGenerate(target, drafter, PROMPTS, {
          ...opts,
          beamWidth: W,
          beamLength: L,
        });
        assert.deepEqual(spec.ids, ar.ids, `batch 3, W=${W} L=${L}`);
        assert.deepEqual(spec.finish, ar.finish);
        accepted += spec.metrics.histogram.slice(1).reduce((a, b) => a + b, 0);
        for (let r = 0; r < PROMPTS.length; r++) {
          const one = await speculativeGenerate(target, drafter, [PROMPTS[r]], {
            ...opts,
            beamWidth: W,
            beamLength: L,
          });
          assert.deepEqual(one.ids[0], ar.ids[r], `batch 1, row ${r}, W=${W} L=${L}`);
        }
      }
      assert.ok(accepted > 0, "some drafts were accepted");
    } finally {
      target.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("ReDrafter exact sampling == autoregressive sampling on the CPU backend (seeds, temperatures)", async () => {
  const { target, drafter, dir } = await pair("llama");
  try {
    const settings: SamplingOptions[] = [
      { temperature: 1, seed: 1 },
      { temperature: 0.7, seed: 2 },
      { temperature: 1.3, topK: 20, seed: 3 },
      { temperature: 0.9, topP: 0.8, seed: 4 },
    ];
    let accepted = 0;
    for (const sampling of settings) {
      const opts = { maxNewTokens: 16, eosIds: [], sampling: { mode: "exact" as const, ...sampling } };
      const ar = await generate(target, PROMPTS, opts);
      const spec = await speculativeGenerate(target, drafter, PROMPTS, {
        ...opts,
        beamWidth: 64,
        beamLength: 3,
      });
      assert.deepEqual(spec.ids, ar.ids, JSON.stringify(sampling));
      accepted += spec.metrics.histogram.slice(1).reduce((a, b) => a + b, 0);
    }
    assert.ok(accepted > 0, "some drafts were accepted");
  } finally {
    target.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
