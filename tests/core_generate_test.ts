import assert from "node:assert/strict";
import { drain, generate, generateStream } from "../core/generate.ts";
import type { TokenEvent } from "../core/options.ts";
import { ToyTarget } from "./support/toy_target.ts";
import { referenceAR } from "./support/reference_ar.ts";

const prompts = [[2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13]];

Deno.test("AR greedy: batch of 3 (different prompt lengths) equals the naive reference per row", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [1] });
  const res = await generate(t, prompts, { maxNewTokens: 25 });
  const want = prompts.map((p, r) => referenceAR(t, p, r, 25, [1]));
  assert.deepEqual(res.ids, want);
  // The rows end at different times and for different reasons (otherwise this test proves little).
  assert.deepEqual(res.finish, want.map((w) => (w[w.length - 1] === 1 ? "eos" : "length")));
  assert.ok(new Set(res.ids.map((x) => x.length)).size > 1);
  assert.ok(res.finish.includes("eos"));
  // batch 1 runs give the same rows
  for (const [r, p] of prompts.entries()) {
    assert.deepEqual((await generate(t, [p], { maxNewTokens: 25 })).ids[0], want[r]);
  }
  assert.ok(t.sessions.every((s) => s.disposed));
  assert.equal(res.metrics.tau, 1);
  assert.equal(res.metrics.prompts[1].newTokens, want[1].length);
});

Deno.test("AR sampling: positions and uniform keys match the reference (several seeds, T, top-k, top-p)", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [1], scale: 2 });
  for (const seed of [0, 1, 77]) {
    for (
      const [temperature, topK, topP] of [[1, 0, 1], [0.6, 0, 1], [1.5, 5, 1], [1, 0, 0.7], [0.9, 8, 0.85]]
    ) {
      const params = { temperature, topK, topP };
      const res = await generate(t, prompts, { maxNewTokens: 20, sampling: { ...params, seed } });
      assert.deepEqual(res.ids, prompts.map((p, r) => referenceAR(t, p, r, 20, [1], { params, seed })));
    }
  }
});

Deno.test("AR streaming: events concatenate to the result; EOS kept; custom eosIds", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [1] });
  const events: TokenEvent[] = [];
  const res = await drain(
    generateStream(t, prompts, { maxNewTokens: 15, eosIds: [0, 5] }),
    (e) => events.push(e),
  );
  const rows: number[][] = prompts.map(() => []);
  for (const e of events) {
    rows[e.row].push(...e.tokens);
    assert.deepEqual(e.drafted, e.tokens.map(() => false));
  }
  assert.deepEqual(rows, res.ids);
  assert.deepEqual(res.ids, prompts.map((p, r) => referenceAR(t, p, r, 15, [0, 5])));
});

Deno.test("AR stop strings: the text is cut before the stop string and ids trimmed to whole tokens", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [] });
  const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + i)).join("");
  const full = referenceAR(t, prompts[0], 0, 30, []);
  const text = decode(full);
  const stop = text.slice(6, 8); // occurs at index 6 (or earlier)
  const at = text.indexOf(stop);
  const res = await generate(t, [prompts[0]], { maxNewTokens: 30, eosIds: [], stop: [stop, "zzzz"], decode });
  assert.equal(res.finish[0], "stop");
  assert.equal(res.text![0], text.slice(0, at));
  assert.deepEqual(res.ids[0], full.slice(0, at));
  // Multi-character tokens: the token that straddles the stop string is dropped from ids, kept in text.
  const decode2 = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + i, 65 + i)).join("");
  const text2 = decode2(full);
  const stop2 = text2.slice(9, 11); // starts inside token 4 (chars 8-9)
  const at2 = text2.indexOf(stop2);
  const res2 = await generate(t, [prompts[0]], {
    maxNewTokens: 30,
    eosIds: [],
    stop: [stop2],
    decode: decode2,
  });
  assert.equal(res2.text![0], text2.slice(0, at2));
  assert.deepEqual(res2.ids[0], full.slice(0, Math.floor(at2 / 2)));
});

Deno.test("AR: bad input is refused with a message naming it", async () => {
  const t = new ToyTarget({ vocab: 24 });
  await assert.rejects(() => generate(t, [], { maxNewTokens: 3 }), /at least one prompt/);
  await assert.rejects(() => generate(t, [[1], []], { maxNewTokens: 3 }), /prompts\[1\] is empty/);
  await assert.rejects(() => generate(t, [[1, 99]], { maxNewTokens: 3 }), /prompts\[0\]\[1\] = 99/);
  await assert.rejects(() => generate(t, [[1]], { maxNewTokens: 0 }), /maxNewTokens/);
  await assert.rejects(() => generate(t, [[1]], { maxNewTokens: 3, stop: ["x"] }), /decode/);
  await assert.rejects(
    () => generate(t, [[1]], { maxNewTokens: 3, sampling: { topP: 2 } }),
    /sampling\.topP/,
  );
});
