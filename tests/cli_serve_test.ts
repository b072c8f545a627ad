/**
 * `deno task serve` (cli/serve.ts): the OpenAI-compatible server over the default pair. Completions equal
 * the library's own generation (greedy and exact sampling), streamed deltas join into the same text, chat
 * requests use the chat template, concurrent requests all finish, and bad requests get a 400 naming the
 * field at fault.
 */
import assert from "node:assert/strict";
import { generate, speculativeGenerate } from "../mod.ts";
import { loadPair, type Pair } from "../cli/setup.ts";
import { settingsFrom } from "../cli/generate.ts";
import { defaultSpeculativeMaxBatch, type ServeOptions, startServer } from "../cli/serve.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PROMPT = "The President shall, from time to time, give to the Congress";

let pairPromise: Promise<Pair> | null = null;
const pair = () => (pairPromise ??= loadPair({ threads: 1, log: () => {} }));

async function withServer(
  fn: (base: string, p: Pair) => Promise<void>,
  maxBatch = 1,
  flags: Record<string, string> = {},
  serve: Partial<ServeOptions> = {},
): Promise<void> {
  const p = await pair();
  const settings = settingsFrom({ "beam-width": "2", "beam-length": "3", ...flags }, p, "redrafter");
  const server = startServer(p, settings, {
    port: 0,
    chatStyle: "raw",
    modelId: "default",
    defaultMaxTokens: 16,
    maxBatch,
    ...serve,
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, p);
  } finally {
    await server.shutdown();
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** The `data:` payloads of a server-sent-event stream. */
async function events(url: string, body: unknown): Promise<string[]> {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const text = await res.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
}

Deno.test("serve: /v1/completions (greedy and sampled) equals the library's generation, with usage and tau", async () => {
  await withServer(async (base, p) => {
    const tok = p.tokenizer!;
    const ids = tok.encode(PROMPT);
    const ref = await generate(p.target, [ids], { maxNewTokens: 20 });
    const { status, json } = await post(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 20 });
    assert.equal(status, 200);
    const choice = (json.choices as Record<string, unknown>[])[0];
    assert.deepEqual(choice.token_ids, ref.ids[0]);
    assert.equal(choice.text, tok.decode(ref.ids[0], { skipSpecialTokens: true }));
    assert.equal(choice.finish_reason, "length");
    assert.deepEqual(json.usage, {
      prompt_tokens: ids.length,
      completion_tokens: 20,
      total_tokens: ids.length + 20,
    });
    const rd = json.redrafter as Record<string, unknown>;
    assert.equal(rd.mode, "redrafter");
    assert.ok((rd.tau as number) > 1, `tau ${rd.tau}`);

    // Token ids as the prompt, and exact sampling: the same text as autoregressive sampling, same seed.
    const sampling = { mode: "exact" as const, temperature: 0.8, topP: 0.9, seed: 7 };
    const refS = await generate(p.target, [ids], { maxNewTokens: 12, sampling });
    const rdS = await speculativeGenerate(p.target, p.drafter!, [ids], {
      maxNewTokens: 12,
      sampling,
      beamWidth: 2,
      beamLength: 3,
    });
    assert.deepEqual(rdS.ids, refS.ids);
    const s = await post(`${base}/v1/completions`, {
      prompt: ids,
      max_tokens: 12,
      temperature: 0.8,
      top_p: 0.9,
      seed: 7,
    });
    assert.equal(s.status, 200);
    assert.deepEqual((s.json.choices as Record<string, unknown>[])[0].token_ids, refS.ids[0]);
  });
});

/**
 * Posts `ids` as a greedy completion, then as an exact-sampling one (temperature 0.8, `seed`), asserts each
 * equals autoregression with the same settings, and returns the two replies' redrafter blocks.
 */
async function completionsEqualAutoregression(
  base: string,
  p: Pair,
  ids: number[],
  maxTokens: number,
  seed: number,
): Promise<Record<string, unknown>[]> {
  const blocks = [];
  for (const s of [undefined, { mode: "exact" as const, temperature: 0.8, seed }]) {
    const ref = await generate(p.target, [ids], { maxNewTokens: maxTokens, sampling: s });
    const { status, json } = await post(`${base}/v1/completions`, {
      prompt: ids,
      max_tokens: maxTokens,
      ...(s ? { temperature: 0.8, seed } : {}),
    });
    assert.equal(status, 200);
    assert.deepEqual(
      (json.choices as Record<string, unknown>[])[0].token_ids,
      ref.ids[0],
      s?.mode ?? "greedy",
    );
    blocks.push(json.redrafter as Record<string, unknown>);
  }
  return blocks;
}

Deno.test("serve --tree-nodes: greedy and sampled completions equal autoregression; the reply names the tree and the draft vocabulary", async () => {
  await withServer(
    async (base, p) => {
      for (const rd of await completionsEqualAutoregression(base, p, p.tokenizer!.encode(PROMPT), 24, 3)) {
        assert.equal(rd.tree_nodes, 8);
        assert.equal(rd.beam_length, 5);
        assert.equal(rd.draft_vocab, 2048, "the embedded drafter's default draft vocabulary");
      }
    },
    1,
    { "beam-width": "3", "beam-length": "5", "tree-nodes": "8" },
  );
});

Deno.test("serve --lookup 4 --lookup-mode first --lookup-length match: greedy and sampled completions equal autoregression; the reply names the lookup", async () => {
  await withServer(
    async (base, p) => {
      // A prompt that repeats itself, so lookup drafts are found.
      const ids = p.tokenizer!.encode(`${PROMPT} ${PROMPT} ${PROMPT}`);
      for (const rd of await completionsEqualAutoregression(base, p, ids, 32, 5)) {
        assert.deepEqual([rd.lookup, rd.lookup_mode, rd.lookup_length], [4, "first", "match"]);
      }
    },
    1,
    { "lookup": "4", "lookup-mode": "first", "lookup-length": "match" },
  );
});

Deno.test("serve: streamed deltas join into the non-streamed text; chat streams a role, content and a finish", async () => {
  await withServer(async (base) => {
    const whole = await post(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 24 });
    const text = (whole.json.choices as { text: string }[])[0].text;
    const ev = await events(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 24, stream: true });
    assert.equal(ev[ev.length - 1], "[DONE]");
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.map((c) => c.choices[0].text).join(""), text);
    assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, "length");
    assert.equal(chunks[chunks.length - 1].usage.completion_tokens, 24);
    assert.ok(chunks.length > 2, "the text came in several pieces");

    const messages = [{ role: "user", content: PROMPT }];
    const chat = await post(`${base}/v1/chat/completions`, { messages, max_tokens: 24 });
    assert.equal(chat.status, 200);
    assert.equal(chat.json.object, "chat.completion");
    const msg = (chat.json.choices as { message: { role: string; content: string } }[])[0].message;
    assert.equal(msg.role, "assistant");
    assert.equal(msg.content, text, "raw chat style: the message content is the prompt");
    const cev = await events(`${base}/v1/chat/completions`, { messages, max_tokens: 24, stream: true });
    const cchunks = cev.slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(cchunks[0].choices[0].delta, { role: "assistant" });
    assert.equal(cchunks.map((c) => c.choices[0].delta.content ?? "").join(""), text);
    assert.equal(cchunks[cchunks.length - 1].choices[0].finish_reason, "length");
  });
});

Deno.test("serve: token_by_token streams one event per token, the same text; --stream-tokens makes it the default", async () => {
  const texts = (ev: string[]) => ev.slice(0, -1).map((e) => JSON.parse(e).choices[0].text as string);
  const body = { prompt: PROMPT, max_tokens: 24, stream: true };
  for (const serverDefault of [false, true]) {
    await withServer(
      async (base) => {
        const whole = await post(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 24 });
        const text = (whole.json.choices as { text: string }[])[0].text;
        const tau = (whole.json.redrafter as { tau: number }).tau;
        assert.ok(tau > 1.2, `tau ${tau}: rounds accept several tokens, so the two cadences differ`);
        const rounds = texts(
          await events(`${base}/v1/completions`, { ...body, stream_options: { token_by_token: false } }),
        );
        const tokens = texts(
          await events(`${base}/v1/completions`, { ...body, stream_options: { token_by_token: true } }),
        );
        const plain = texts(await events(`${base}/v1/completions`, body));
        assert.deepEqual(
          plain,
          serverDefault ? tokens : rounds,
          "without stream_options the server's default",
        );
        for (const t of [rounds, tokens]) assert.equal(t.join(""), text);
        // Every non-empty piece but the finish (whose text is empty) is one token's text here: this tokenizer
        // decodes each of these tokens on its own.
        const pieces = tokens.filter((t) => t !== "");
        assert.equal(pieces.length, 24, JSON.stringify(pieces));
        assert.ok(rounds.filter((t) => t !== "").length < 24 * 0.8, `rounds: ${rounds.length} events`);
      },
      1,
      {},
      { tokenByToken: serverDefault },
    );
  }
});

Deno.test("serve: concurrent requests all finish with their own text; a cancelled stream stops; stop strings; models, health", async () => {
  await withServer(async (base) => {
    const prompts = [PROMPT, "Call me Ishmael.", "It was a bright cold day"];
    const alone = [];
    for (const prompt of prompts) {
      alone.push(await post(`${base}/v1/completions`, { prompt, max_tokens: 10 }));
    }
    const together = await Promise.all(
      prompts.map((prompt) => post(`${base}/v1/completions`, { prompt, max_tokens: 10 })),
    );
    for (let i = 0; i < prompts.length; i++) {
      assert.deepEqual(
        (together[i].json.choices as { token_ids: number[] }[])[0].token_ids,
        (alone[i].json.choices as { token_ids: number[] }[])[0].token_ids,
      );
    }
    // A client that leaves a long stream stops its generation: the next request is not kept waiting.
    const long = await fetch(`${base}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: PROMPT, max_tokens: 900, stream: true }),
    });
    const reader = long.body!.getReader();
    await reader.read();
    await reader.cancel();
    const after = await post(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 10 });
    assert.deepEqual(
      (after.json.choices as { token_ids: number[] }[])[0].token_ids,
      (alone[0].json.choices as { token_ids: number[] }[])[0].token_ids,
    );
    assert.ok(((after.json.redrafter as { tokens_per_second: number }).tokens_per_second) > 0);

    // A stop string ends the text before it, streamed or not.
    const stopped = await post(`${base}/v1/completions`, { prompt: PROMPT, max_tokens: 30, stop: " the" });
    const st = (stopped.json.choices as { text: string; finish_reason: string }[])[0];
    assert.equal(st.finish_reason, "stop");
    assert.ok(!st.text.includes(" the"), JSON.stringify(st.text));
    const sev = await events(`${base}/v1/completions`, {
      prompt: PROMPT,
      max_tokens: 30,
      stop: " the",
      stream: true,
    });
    assert.equal(sev.slice(0, -1).map((e) => JSON.parse(e).choices[0].text).join(""), st.text);

    const models = await (await fetch(`${base}/v1/models`)).json();
    assert.equal(models.data[0].id, "default");
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.status, "ok");
  });
});

Deno.test('serve: "speculative": false decodes a request autoregressively, with the same tokens', async () => {
  await withServer(async (base, p) => {
    const ids = p.tokenizer!.encode(PROMPT);
    const ref = await generate(p.target, [ids], { maxNewTokens: 16 });
    for (const speculative of [false, true, undefined]) {
      const { status, json } = await post(`${base}/v1/completions`, {
        prompt: ids,
        max_tokens: 16,
        speculative,
      });
      assert.equal(status, 200);
      assert.deepEqual((json.choices as Record<string, unknown>[])[0].token_ids, ref.ids[0]);
      const rd = json.redrafter as Record<string, unknown>;
      assert.equal(rd.mode, speculative === false ? "autoregressive" : "redrafter", String(speculative));
      if (speculative === false) assert.equal(rd.tau, 1);
    }
  });
  // A server without a drafter refuses "speculative": true, naming the field.
  const ar = await loadPair({ threads: 1, noDrafter: true, log: () => {} });
  const server = startServer(ar, settingsFrom({}, ar, "autoregressive"), {
    port: 0,
    chatStyle: "raw",
    modelId: "default",
  });
  try {
    const { status, json } = await post(`http://127.0.0.1:${server.addr.port}/v1/completions`, {
      prompt: "hi",
      speculative: true,
    });
    assert.equal(status, 400);
    assert.match((json.error as { message: string }).message, /'speculative': true needs a drafter/);
  } finally {
    await server.shutdown();
    ar.dispose();
  }
});

Deno.test("serve: bad requests get a 400 naming the field; unknown routes 404, wrong methods 405", async () => {
  await withServer(async (base) => {
    const cases: [string, unknown, RegExp][] = [
      ["/v1/completions", "{not json", /not valid JSON/],
      ["/v1/completions", {}, /'prompt' is required/],
      ["/v1/completions", { prompt: [1, 99999] }, /token id 99999 is outside the vocabulary \[0, 8192\)/],
      ["/v1/completions", { prompt: "hi", max_tokens: 0 }, /'max_tokens' must be an integer >= 1/],
      ["/v1/completions", { prompt: "hi", max_tokens: "5" }, /'max_tokens' must be a number/],
      ["/v1/completions", { prompt: "hi", temperature: -1 }, /temperature/],
      ["/v1/completions", { prompt: "hi", temperature: 1, top_p: 2 }, /top_p/],
      ["/v1/completions", { prompt: "hi", stop: [""] }, /'stop' must be a non-empty string/],
      ["/v1/completions", { prompt: "hi", stream: "yes" }, /'stream' must be a boolean/],
      ["/v1/completions", { prompt: "hi", speculative: 1 }, /'speculative' must be a boolean/],
      ["/v1/completions", { prompt: "hi", stream_options: {} }, /'stream_options' needs 'stream': true/],
      [
        "/v1/completions",
        { prompt: "hi", stream: true, stream_options: [] },
        /'stream_options' must be an object/,
      ],
      [
        "/v1/completions",
        { prompt: "hi", stream: true, stream_options: { token_by_token: "yes" } },
        /'stream_options.token_by_token' must be a boolean/,
      ],
      [
        "/v1/completions",
        { prompt: "hi", stream: true, stream_options: { cadence: 1 } },
        /'stream_options.cadence' is not supported/,
      ],
      ["/v1/chat/completions", { messages: [] }, /'messages' is required/],
      [
        "/v1/chat/completions",
        { messages: [{ role: "user" }] },
        /'messages\[0\]' must have a string 'role' and a string 'content'/,
      ],
      [
        "/v1/completions",
        { prompt: "x ".repeat(1200) },
        /the prompt is \d+ tokens; the model's context is 1024/,
      ],
    ];
    for (const [path, body, re] of cases) {
      const { status, json } = await post(`${base}${path}`, body);
      assert.equal(status, 400, `${path} ${JSON.stringify(body).slice(0, 60)}`);
      assert.match((json.error as { message: string }).message, re);
    }
    assert.equal((await (await fetch(`${base}/v1/nothing`)).json()).error.type, "not_found");
    const get = await fetch(`${base}/v1/completions`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
  });
});

for (const [speculativeMaxBatch, mode] of [[undefined, "autoregressive"], [4, "redrafter"]] as const) {
  Deno.test(`serve --max-batch, --speculative-max-batch ${speculativeMaxBatch ?? "default"}: greedy requests that queue up run as one batch (${mode}), each with its solo tokens`, async () => {
    await withServer(
      async (base, p) => {
        const tok = p.tokenizer!;
        const prompts = ["Call me Ishmael.", "It was a bright cold day in April", PROMPT];
        const limits = [6, 14, 9];
        const solo = [];
        for (let i = 0; i < prompts.length; i++) {
          solo.push((await generate(p.target, [tok.encode(prompts[i])], { maxNewTokens: limits[i] })).ids[0]);
        }
        // A long stream keeps the model busy while the others queue up behind it.
        const busy = fetch(`${base}/v1/completions`, {
          method: "POST",
          body: JSON.stringify({ prompt: PROMPT, max_tokens: 900, stream: true }),
        });
        const first = await busy;
        const reader = first.body!.getReader();
        await reader.read();
        const sampled = post(`${base}/v1/completions`, {
          prompt: PROMPT,
          max_tokens: 5,
          temperature: 1,
          seed: 1,
        });
        const queued = prompts.map((prompt, i) =>
          post(`${base}/v1/completions`, { prompt, max_tokens: limits[i] })
        );
        // Give them time to arrive, then let the long stream go: its batch stops, and the queue runs.
        await new Promise((r) => setTimeout(r, 300));
        await reader.cancel();
        const answers = await Promise.all(queued);
        for (let i = 0; i < prompts.length; i++) {
          const a = answers[i].json;
          assert.deepEqual((a.choices as { token_ids: number[] }[])[0].token_ids, solo[i], prompts[i]);
          assert.equal((a.choices as { finish_reason: string }[])[0].finish_reason, "length");
          assert.equal(
            (a.redrafter as { batch: number }).batch,
            3,
            "the three greedy requests shared one batch",
          );
          // On the cpu backend a batch of more than 2 rows decodes autoregressively unless the server says more.
          assert.equal((a.redrafter as { mode: string }).mode, mode);
          assert.equal(
            (a.redrafter as { beam_width: number | null }).beam_width,
            mode === "redrafter" ? 2 : null,
          );
          assert.equal((a.usage as { completion_tokens: number }).completion_tokens, limits[i]);
        }
        const alone = (await sampled).json.redrafter as { batch: number; mode: string };
        assert.equal(alone.batch, 1, "a sampled request runs alone");
        assert.equal(alone.mode, "redrafter", "with the drafter: a batch of 1 is never too big");
        await reader.cancel();
      },
      4,
      {},
      { speculativeMaxBatch },
    );
  });
}

Deno.test("defaultSpeculativeMaxBatch: 2 rows on the CPU backends, no limit on the GPU ones", () => {
  for (const b of ["cpu", "onnx-node", "onnx-wasm"]) assert.equal(defaultSpeculativeMaxBatch(b), 2);
  for (const b of ["onnx-webgpu", "onnx-cuda"]) assert.equal(defaultSpeculativeMaxBatch(b), Infinity);
});

Deno.test("serve CLI: flags of generate's other modes and a bad port are usage errors", async () => {
  for (
    const [args, re] of [
      [["--prompt", "hi"], /--prompt is a flag of `deno task generate`, not of serve/],
      [["--port", "70000"], /--port/],
      [["--speculative-max-batch", "0"], /--speculative-max-batch/],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}cli/serve.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.notEqual(out.code, 0);
    assert.match(new TextDecoder().decode(out.stderr), re);
  }
});

Deno.test({
  name: "serve: dispose the shared pair",
  sanitizeResources: false,
  async fn() {
    if (pairPromise) (await pairPromise).dispose();
  },
});
