/**
 * cli/generate.ts run as a subprocess: ReDrafter output equals autoregressive output (greedy and exact
 * sampling) through the CLI, --json and --eval/--compare reports, the interactive chat over a pipe and a
 * pseudo-terminal (colours only on a TTY), Ctrl-C stopping an answer, and one-line errors with exit code 2
 * for bad input.
 *
 * Fixtures: tests/fixtures/models/llama (no tokenizer) with a random drafter made here, and
 * tests/fixtures/models/tiny_chat (+ its oracle drafter, see tools/make_cli_fixtures.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeRandomDrafter } from "../tools/make_random_drafter.ts";
import { cliEnv, generate, hasScript, LLAMA, PROMPTS, ROOT, TINY, TINY_DRAFTER } from "./support/cli.ts";

const ESC = "\x1b[";
const TMP = Deno.makeTempDirSync({ prefix: "redrafter-cli-" });
const RANDOM_DRAFTER = makeRandomDrafter(LLAMA, join(TMP, "llama_drafter"), { seed: 5, layers: 1 });
const LLAMA_PAIR = ["--model", LLAMA, "--drafter", RANDOM_DRAFTER];
const TINY_PAIR = ["--model", TINY, "--drafter", TINY_DRAFTER];

async function json(args: string[]): Promise<Record<string, unknown>> {
  const r = await generate([...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, r.stdout);
  return JSON.parse(lines[0]);
}

Deno.test("generate --prompt-ids: greedy ReDrafter ids equal --autoregressive ids (random drafter)", async () => {
  const args = [...LLAMA_PAIR, "--prompt-ids", "1,17,42,99", "--max-new-tokens", "24"];
  const rd = await json([...args, "--beam-width", "3", "--beam-length", "4"]);
  const ar = await json([...args, "--autoregressive"]);
  const chains = await json([...args, "--beam-width", "3", "--beam-length", "4", "--no-tree"]);
  const tree = await json([...args, "--beam-width", "2", "--beam-length", "5", "--tree-nodes", "6"]);
  assert.deepEqual(tree.ids, ar.ids, "a dynamic draft tree");
  assert.equal(tree.tree_nodes, 6);
  assert.equal(rd.tree_nodes, 0);
  assert.equal(rd.mode, "redrafter");
  assert.equal(ar.mode, "autoregressive");
  assert.equal((rd.ids as number[]).length, 24);
  assert.deepEqual(rd.ids, ar.ids);
  assert.deepEqual(chains.ids, ar.ids);
  assert.equal(rd.text, undefined, "no tokenizer: no text");
  const stats = rd.stats as Record<string, unknown>;
  for (
    const k of [
      "tau",
      "steps",
      "newTokens",
      "acceptanceByPosition",
      "histogram",
      "meanDraftMs",
      "tokensPerSecond",
    ]
  ) {
    assert.ok(k in stats, `stats.${k}`);
  }
  assert.equal(stats.newTokens, 24);
  assert.equal((stats.acceptanceByPosition as number[]).length, 3);
  assert.deepEqual(rd.prompt_ids, [1, 17, 42, 99]);
});

Deno.test("generate --draft-vocab: the embedded drafter's default 2048, N or all; the same ids", async () => {
  const args = ["--prompt", "The whale", "--max-new-tokens", "24", "--beam-width", "2", "--beam-length", "4"];
  const byDefault = await json(args);
  const n = await json([...args, "--draft-vocab", "512"]);
  const all = await json([...args, "--draft-vocab", "all"]);
  const ar = await json([...args, "--autoregressive"]);
  assert.equal(byDefault.draft_vocab, 2048);
  assert.equal(n.draft_vocab, 512);
  assert.equal(all.draft_vocab, 8192);
  for (const r of [byDefault, n, all]) assert.deepEqual(r.ids, ar.ids);
  // A random drafter without draft_vocab.json drafts the whole vocabulary by default.
  const plain = await json([...LLAMA_PAIR, "--prompt-ids", "1,17", "--max-new-tokens", "4"]);
  assert.equal(plain.draft_vocab, 128);
});

Deno.test("generate --prompt: the oracle drafter is accepted (tau > 1) and text matches the baseline", async () => {
  const args = [...TINY_PAIR, "--prompt", "Tell me a story.", "--max-new-tokens", "40"];
  const rd = await json([...args, "--beam-width", "4", "--beam-length", "5"]);
  const ar = await json([...args, "--autoregressive"]);
  assert.deepEqual(rd.ids, ar.ids);
  assert.equal(rd.text, ar.text);
  assert.equal(typeof rd.text, "string");
  assert.ok((rd.stats as { tau: number }).tau > 3, `tau ${(rd.stats as { tau: number }).tau}`);
  assert.equal(rd.prompt_style, "chat", "the tokenizer has a chat template: chat is the default");
  const raw = await json([...args, "--raw"]);
  assert.equal(raw.prompt_style, "raw");
  assert.ok((raw.prompt_ids as number[]).length < (rd.prompt_ids as number[]).length);
});

Deno.test("generate: exact sampling gives the autoregressive sample with the same seed", async () => {
  const args = [...TINY_PAIR, "--prompt", "Once upon a time", "--raw", "--max-new-tokens", "30"];
  for (const seed of ["1", "2"]) {
    const s = ["--temperature", "0.7", "--top-k", "40", "--seed", seed];
    const rd = await json([...args, ...s]);
    const ar = await json([...args, ...s, "--autoregressive"]);
    assert.deepEqual(rd.ids, ar.ids, `seed ${seed}`);
    assert.deepEqual(rd.sampling, { mode: "exact", temperature: 0.7, topK: 40, topP: 1, seed: Number(seed) });
  }
});

Deno.test("generate --prompt streams text to stdout and one stats line to stderr", async () => {
  const r = await generate([...TINY_PAIR, "--prompt", "hi", "--max-new-tokens", "16"]);
  assert.equal(r.code, 0, r.stderr);
  const full = await json([...TINY_PAIR, "--prompt", "hi", "--max-new-tokens", "16"]);
  assert.equal(r.stdout, `${full.text}\n`);
  // The tiny pair's drafter is not the embedded one: 1 x 3 on the cpu backend, no lookup (draftingDefaults).
  assert.match(r.stderr.trim(), /^16 tokens, tau \d+\.\d\d \(1 x 3\), [\d.]+ tok\/s/);
  assert.ok(!r.stdout.includes(ESC), "no colour when stdout is a pipe");
});

Deno.test("generate --stop trims at the stop text", async () => {
  const full = await json([...TINY_PAIR, "--prompt", "hi", "--max-new-tokens", "30"]);
  const text = full.text as string;
  const stop = text.slice(6, 9);
  const cut = await json([...TINY_PAIR, "--prompt", "hi", "--max-new-tokens", "30", "--stop", stop]);
  assert.equal(cut.finish, "stop");
  assert.equal(cut.text, text.slice(0, text.indexOf(stop)));
});

Deno.test("generate --eval --compare: same prompts, identical outputs, tables and --output JSONL", async () => {
  const out = join(TMP, "gens.jsonl");
  const r = await generate([
    ...TINY_PAIR,
    "--eval",
    join(PROMPTS, "prompts.jsonl"),
    "--compare",
    "--beam-width",
    "4",
    "--beam-length",
    "4",
    "--max-new-tokens",
    "20",
    "--batch-size",
    "2",
    "--output",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /identical outputs: 3\/3/);
  assert.match(
    r.stdout,
    /speedup \(autoregressive time \/ ReDrafter time\): [\d.]+x; decoding alone \(prefill left out\): [\d.]+x/,
  );
  assert.match(r.stdout, /tau \(tokens per step\)/);
  assert.match(r.stdout, /acceptance at draft 3/);
  assert.match(r.stdout, /draft ms\/step/);
  assert.match(r.stderr, /prompts: 100% 3\/3/, "progress on stderr");
  const recs = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(recs.length, 6, "3 prompts x (autoregressive, redrafter)");
  assert.deepEqual(recs.map((x) => x.mode).sort(), [
    "autoregressive",
    "autoregressive",
    "autoregressive",
    "redrafter",
    "redrafter",
    "redrafter",
  ]);
  assert.deepEqual(new Set(recs.map((x) => x.id)), new Set(["1", "math-1", "3"]));
});

Deno.test("generate --eval: batch-1 second turns reuse the first turn's KV cache, same output", async () => {
  const args = [
    ...TINY_PAIR,
    "--eval",
    join(PROMPTS, "mt_bench_small.jsonl"),
    "--turns",
    "2",
    "--max-num-prompts",
    "2",
    "--max-new-tokens",
    "8",
    "--compare",
    "--json",
  ];
  const records = async (batch: string) => {
    const r = await generate([...args, "--batch-size", batch]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").slice(0, -1).map((l) => JSON.parse(l));
  };
  const cached = await records("1");
  const plain = await records("2");
  assert.equal(cached.length, 8, "2 prompts x 2 turns x 2 kinds");
  const key = (x: { id: string; turn: number; mode: string }) => `${x.id}/${x.turn}/${x.mode}`;
  const plainBy = new Map(plain.map((x) => [key(x), x]));
  for (const x of cached) {
    const y = plainBy.get(key(x))!;
    assert.deepEqual(x.prompt_ids, y.prompt_ids, key(x));
    assert.deepEqual(x.ids, y.ids, key(x));
    assert.equal(y.cached_prompt_tokens, 0, "batches of 2 are not cached");
    if (x.turn === 1) assert.equal(x.cached_prompt_tokens, 0);
    else {
      // Turn 2 re-renders turn 1's prompt and answer: all of the prompt and all but the answer's last
      // token (never fed) were in the cache, at most up to where the template re-renders differently.
      const first = cached.find((f) => f.id === x.id && f.mode === x.mode && f.turn === 1);
      assert.ok(x.cached_prompt_tokens >= first.prompt_ids.length, `${key(x)}: ${x.cached_prompt_tokens}`);
      assert.ok(x.cached_prompt_tokens < x.prompt_ids.length);
    }
  }
});

Deno.test("generate --eval: MT-bench two turns, last partial batch runs, --json lines", async () => {
  const r = await generate([
    ...TINY_PAIR,
    "--eval",
    join(PROMPTS, "mt_bench_small.jsonl"),
    "--turns",
    "2",
    "--max-num-prompts",
    "3",
    "--batch-size",
    "2",
    "--max-new-tokens",
    "8",
    "--beam-length",
    "4",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const recs = lines.slice(0, -1);
  assert.equal(recs.length, 6, "3 prompts x 2 turns (the batch of 1 at the end ran)");
  assert.deepEqual(recs.map((x) => x.turn).sort(), [1, 1, 1, 2, 2, 2]);
  for (const x of recs) {
    assert.equal(x.mode, "redrafter");
    assert.equal(x.ids.length, x.stats.newTokens);
  }
  const second = recs.find((x) => x.turn === 2)!;
  const first = recs.find((x) => x.turn === 1 && x.id === second.id)!;
  assert.ok(
    second.prompt_ids.length > first.prompt_ids.length + first.ids.length - 2,
    "turn 2 carries turn 1",
  );
  const summary = lines.at(-1);
  assert.equal(summary.summary.redrafter.prompts, 6);
  assert.equal(summary.beam_length, 4);
});

Deno.test("generate --eval-mt-bench offline uses ../shared/data/mt_bench/question.jsonl", {
  ignore: !existsSync(join(ROOT, "../shared/data/mt_bench/question.jsonl")),
}, async () => {
  const r = await generate([
    ...TINY_PAIR,
    "--eval-mt-bench",
    "--max-num-prompts",
    "2",
    "--max-new-tokens",
    "4",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.slice(0, 2).map((x) => x.id), ["81", "82"]);
  assert.match(r.stderr, /shared\/data\/mt_bench\/question\.jsonl/);
});

Deno.test("generate interactive: two turns over a pipe then 'exit'; end of input also leaves", async () => {
  const r = await generate([...TINY_PAIR, "--max-new-tokens", "12"], {
    stdin: "hello there\nwhat next?\nexit\nnot read\n",
  });
  assert.equal(r.code, 0, r.stderr);
  const stats = r.stderr.trim().split("\n").filter((l) => /^12 tokens, tau/.test(l));
  assert.equal(stats.length, 2, r.stderr);
  assert.equal(r.stdout.trim().split("\n").length, 2);
  assert.ok(!(r.stdout + r.stderr).includes(ESC), "no colour on pipes");
  // Multi-turn history: the second prompt is longer than the first by more than the new line alone.
  const prompts = [...r.stderr.matchAll(/prompt (\d+) tokens/g)].map((m) => Number(m[1]));
  assert.ok(prompts[1] > prompts[0] + 12, `prompt lengths ${prompts}`);
  // The second turn reuses the KV cache: at least the whole first prompt is not fed again.
  assert.ok(!/from the cache/.test(stats[0]), stats[0]);
  const reused = /; (\d+) of (\d+) prompt tokens from the cache/.exec(stats[1]);
  assert.ok(reused && Number(reused[1]) >= prompts[0] && Number(reused[2]) === prompts[1], stats[1]);

  const eof = await generate([...TINY_PAIR, "--max-new-tokens", "5"], { stdin: "one line without newline" });
  assert.equal(eof.code, 0, eof.stderr);
  assert.equal(eof.stderr.trim().split("\n").filter((l) => /^5 tokens/.test(l)).length, 1);
});

Deno.test({
  name: "generate interactive on a pseudo-terminal: drafted tokens coloured; --no-color turns it off",
  ignore: !hasScript(),
  fn: async () => {
    const run = async (extra: string) => {
      const cmd = `${Deno.execPath()} run -q -A cli/generate.ts --model ${TINY} --drafter ${TINY_DRAFTER} ` +
        `--max-new-tokens 24 --beam-width 4 --beam-length 5 ${extra}`;
      const child = new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        cwd: ROOT,
        env: cliEnv(),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("hello\nexit\n"));
      await w.close();
      const out = await child.output();
      return { code: out.code, text: new TextDecoder().decode(out.stdout) };
    };
    const tty = await run("");
    assert.equal(tty.code, 0, tty.text);
    assert.ok(tty.text.includes(`${ESC}36m`), "accepted drafts in cyan");
    assert.ok(tty.text.includes(`${ESC}1m> `), "bold prompt");
    assert.match(tty.text, /24 tokens, tau/);
    const plain = await run("--no-color");
    assert.equal(plain.code, 0, plain.text);
    assert.ok(!plain.text.includes(ESC), "no escapes at all with --no-color");
    assert.match(plain.text, /24 tokens, tau/);
  },
});

Deno.test("generate interactive: SIGINT stops the answer, not the program", async () => {
  // A slow configuration (wide, long beams; sampling rejects most drafts) so the answer is still running.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "-A",
      "cli/generate.ts",
      ...TINY_PAIR,
      "--max-new-tokens",
      "900",
      "--beam-width",
      "64",
      "--beam-length",
      "16",
      "--temperature",
      "2",
      "--top-k",
      "500",
    ],
    cwd: ROOT,
    env: cliEnv(),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("hello\n"));
  const reader = child.stdout.getReader();
  const first = await reader.read(); // the answer has started
  assert.ok(!first.done);
  child.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 300));
  await w.write(new TextEncoder().encode("exit\n"));
  await w.close();
  while (!(await reader.read()).done) { /* drain */ }
  const status = await child.status;
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  assert.equal(status.code, 0, stderr);
  assert.match(stderr, /stopped: \d+ tokens/);
});

Deno.test({
  name: "generate with no --model: the embedded default pair drafts (tau > 1) and matches the baseline",
  ignore: !existsSync(join(ROOT, "models/default/drafter/config.json")),
  fn: async () => {
    const args = ["--prompt", "Call me Ishmael.", "--max-new-tokens", "24"];
    const rd = await json(args);
    const ar = await json([...args, "--autoregressive"]);
    assert.equal(rd.mode, "redrafter");
    assert.deepEqual(rd.ids, ar.ids);
    assert.ok((rd.stats as { tau: number }).tau > 1);
  },
});

function existsSync(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

const BAD: [string, string[], RegExp][] = [
  ["unknown flag", ["--bogus"], /unknown flag --bogus/],
  [
    "missing prompt file",
    [...TINY_PAIR, "--eval", "/no/such/prompts.jsonl"],
    /prompts\.jsonl: prompt file not found/,
  ],
  [
    "malformed prompt file",
    [...TINY_PAIR, "--eval", join(PROMPTS, "bad_json.jsonl")],
    /bad_json\.jsonl:3: invalid JSON/,
  ],
  [
    "prompt longer than the context",
    [...LLAMA_PAIR, "--prompt-ids", Array(130).fill(5).join(",")],
    /context is 128/,
  ],
  [
    "beam length out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--beam-length", "1"],
    /--beam-length must be/,
  ],
  [
    "beam width out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--beam-width", "0"],
    /--beam-width must be/,
  ],
  [
    "beam width above the vocabulary",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--beam-width", "129"],
    /--beam-width/,
  ],
  [
    "non-existent model directory",
    ["--model", "/no/such/model", "--prompt-ids", "1"],
    /--model: \/no\/such\/model/,
  ],
  [
    "offline, Hub model not cached",
    ["--model", "nobody/nothing", "--prompt-ids", "1"],
    /nothing of nobody\/nothing@main is cached/,
  ],
  [
    "drafter that does not fit",
    ["--model", LLAMA, "--drafter", TINY_DRAFTER, "--prompt-ids", "1"],
    /--drafter: .*does not fit/,
  ],
  [
    "unknown backend",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--backend", "tpu"],
    /--backend must be one of cpu, onnx-wasm/,
  ],
  [
    "--onnx-weights with the cpu backend",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--onnx-weights", "q4"],
    /--onnx-weights applies to the onnx-\* backends, not --backend cpu/,
  ],
  [
    "unknown --onnx-weights",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--backend", "onnx-node", "--onnx-weights", "int3"],
    /--onnx-weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4; got 'int3'/,
  ],
  [
    "--drafter-weights the cpu drafter cannot hold",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--drafter-weights", "q4"],
    /--drafter-weights q4 applies to the onnx-\* backends; the cpu drafter takes fp32, q8, q7/,
  ],
  [
    "--drafter-threads out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--drafter-threads", "0"],
    /--drafter-threads must be between 1 and 1024, got 0/,
  ],
  [
    "--lookup with the apple rule",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup", "3", "--sampling", "apple", "--temperature", "1"],
    /--lookup needs greedy or --sampling exact: the apple rule reads the drafter's Q/,
  ],
  [
    "--lookup out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup", "65"],
    /--lookup must be between 0 and 64, got 65/,
  ],
  [
    "unknown --lookup-mode",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup", "2", "--lookup-mode", "instead"],
    /--lookup-mode must be one of branch, first; got 'instead'/,
  ],
  [
    "--lookup-mode without --lookup",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup-mode", "first"],
    /--lookup-mode needs --lookup N with N >= 1/,
  ],
  [
    "unknown --lookup-length",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup", "2", "--lookup-length", "long"],
    /--lookup-length must be one of fixed, match; got 'long'/,
  ],
  [
    "--lookup-length without --lookup",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--lookup-length", "match"],
    /--lookup-length needs --lookup N with N >= 1/,
  ],
  [
    "--tree-nodes with the apple rule",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--tree-nodes", "4", "--sampling", "apple", "--temperature", "1"],
    /--tree-nodes needs greedy or --sampling exact: the apple rule reads beam search's Q/,
  ],
  [
    "--tree-nodes with --no-tree",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--tree-nodes", "4", "--no-tree"],
    /--tree-nodes needs tree verification; drop --no-tree/,
  ],
  [
    "--tree-nodes out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--tree-nodes", "257"],
    /--tree-nodes must be between 0 and 256, got 257/,
  ],
  [
    "--tree-children without --tree-nodes",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--tree-children", "3"],
    /--tree-children needs --tree-nodes N with N >= 1/,
  ],
  [
    "--tree-children out of range",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--tree-nodes", "8", "--tree-children", "51"],
    /--tree-children must be between 1 and 50, got 51/,
  ],
  [
    "--drafter-backend neither cpu nor the target's",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--drafter-backend", "onnx-node"],
    /--drafter-backend must be cpu or the target's --backend \(cpu\); got 'onnx-node'/,
  ],
  [
    "--draft-vocab below the warp",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--draft-vocab", "49"],
    /--draft-vocab must be at least 50, got 49/,
  ],
  [
    "--draft-vocab without a ranking next to the drafter",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--draft-vocab", "64"],
    /--draft-vocab: .*draft_vocab.json: not found.*tools\/draft_vocab.ts/,
  ],
  [
    "--beam-width above the draft vocabulary",
    ["--prompt", "x", "--draft-vocab", "50", "--beam-width", "64"],
    /--beam-width 64 is more than the draft vocabulary of 50 tokens \(--draft-vocab\)/,
  ],
  [
    "unknown --drafter-weights",
    [...LLAMA_PAIR, "--prompt-ids", "1", "--drafter-weights", "int3"],
    /--drafter-weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4, q7; got 'int3'/,
  ],
  [
    "token id outside the vocabulary",
    [...LLAMA_PAIR, "--prompt-ids", "1,128"],
    /--prompt-ids: 128 is outside/,
  ],
  ["text prompt without tokenizer", [...LLAMA_PAIR, "--prompt", "hi"], /needs a tokenizer/],
  [
    "conflicting sampling flags",
    [...TINY_PAIR, "--prompt", "x", "--greedy", "--temperature", "1"],
    /--greedy excludes/,
  ],
  [
    "bad number",
    [...TINY_PAIR, "--prompt", "x", "--max-new-tokens", "many"],
    /--max-new-tokens must be an integer/,
  ],
  [
    "two turns of a text file",
    [...TINY_PAIR, "--eval", join(PROMPTS, "prompts.txt"), "--turns", "2"],
    /two turns need/,
  ],
  ["--json in chat mode", [...TINY_PAIR, "--json"], /--json needs/],
];

for (const [what, args, pattern] of BAD) {
  Deno.test(`generate bad input: ${what} -> one line, exit code 2`, async () => {
    const r = await generate(args);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
    assert.equal(r.stdout, "");
  });
}

const webgpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown | null> } }).gpu;
const webgpuAdapter = webgpu ? await webgpu.requestAdapter().catch(() => null) : null;

Deno.test({
  name:
    "generate --backend onnx-webgpu: no drafting flags draft a 32-node tree, 4 x 7, with autoregression's ids",
  ignore: webgpuAdapter === null,
  sanitizeResources: false,
  async fn() {
    const args = [
      ...LLAMA_PAIR,
      "--backend",
      "onnx-webgpu",
      "--prompt-ids",
      "1,17,42,99",
      "--max-new-tokens",
      "12",
    ];
    const rd = await json(args);
    const ar = await json([...args, "--autoregressive"]);
    assert.equal(rd.backend, "onnx-webgpu");
    assert.deepEqual(
      [rd.beam_width, rd.beam_length, rd.tree_nodes, rd.lookup],
      [4, 7, 32, 0],
    );
    assert.equal((rd.ids as number[]).length, 12);
    assert.deepEqual(rd.ids, ar.ids);
  },
});
