/**
 * tools/bench_onnx.ts as a subprocess on the tiny Llama fixture: every --weights format of every ONNX
 * provider is loaded, timed in interleaved rounds and compared with the CPU reference; a bad format is
 * refused by name. tools/draft_vocab.ts and tools/bench_draft_vocab.ts on the tiny chat pair;
 * tools/bench_head_screen.ts and tools/ab_cpu_checkouts.ts on the tiny Llama; tools/profile_default.ts on the
 * default pair; tools/profile_forward.ts on the tiny Llama; tools/tool_args.ts (--help and bad flags).
 */
import assert from "node:assert/strict";
import { LLAMA, runCli, TINY, TINY_DRAFTER } from "./support/cli.ts";
import { loadTokenizer } from "../loader/tokenizer.ts";
import { headerComment } from "../tools/tool_args.ts";
import { rankByCount, sampleWindows } from "../tools/draft_vocab.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { generate } from "../core/generate.ts";

Deno.test("tools/bench_onnx.ts: a --weights list in interleaved --rounds, each against the CPU reference's kernels", async () => {
  const r = await runCli("tools/bench_onnx.ts", [
    "--dir",
    LLAMA,
    "--providers",
    "onnx-node,cpu,cpu:js",
    "--weights",
    "fp32,q4g128",
    "--rounds",
    "2",
    "--tokens",
    "4",
    "--prompt",
    "4",
    "--threads",
    "1",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /median of 2 interleaved rounds/);
  for (const weights of ["fp32", "q4g128"]) {
    assert.match(
      r.stdout,
      new RegExp(
        `onnx-node ${weights} +prefill +[\\d.]+ ms +decode +[\\d.]+ tok/s \\([\\d.]+-[\\d.]+\\) +[\\d.]+x cpu, +[\\d.]+x cpu:js$`,
        "m",
      ),
    );
  }
  assert.match(
    r.stdout,
    /^cpu +prefill +[\d.]+ ms +decode +[\d.]+ tok\/s \([\d.]+-[\d.]+\) +[\d.]+x cpu:js$/m,
  );
  assert.match(
    r.stdout,
    /^cpu:js +prefill +[\d.]+ ms +decode +[\d.]+ tok\/s \([\d.]+-[\d.]+\) +[\d.]+x cpu$/m,
  );
});

Deno.test("tools/bench_onnx.ts: an unknown --weights format is refused by name", async () => {
  const r = await runCli("tools/bench_onnx.ts", ["--dir", LLAMA, "--providers", "cpu", "--weights", "int3"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4; got 'int3'/);
});

Deno.test("tools/draft_vocab.ts ranks a corpus' tokens; tools/bench_draft_vocab.ts times the cut heads", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "draft-vocab-tools-" });
  // The tiny chat model's drafter, with a ranking made from a small corpus (jsonl, split filter, text).
  for (const f of ["config.json", "model.safetensors"]) {
    Deno.copyFileSync(`${TINY_DRAFTER}/${f}`, `${dir}/${f}`);
  }
  Deno.writeTextFileSync(
    `${dir}/corpus.jsonl`,
    [
      { text: "the cat sat on the mat", split: "train" },
      { text: "held out text", split: "heldout" },
      { prompt: "the dog sat", split: "train" },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  Deno.writeTextFileSync(`${dir}/more.txt`, "the end\n\nthe the the\n");
  const out = `${dir}/draft_vocab.json`;
  const r = await runCli("tools/draft_vocab.ts", [
    "--tokenizer",
    TINY,
    "--out",
    out,
    "--split",
    "train",
    "--default-size",
    "64",
    `${dir}/corpus.jsonl`,
    `${dir}/more.txt`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*draft_vocab.json: 4 texts, \d+ corpus tokens/);
  const data = JSON.parse(Deno.readTextFileSync(out));
  const V = JSON.parse(Deno.readTextFileSync(`${TINY}/config.json`)).vocab_size;
  assert.equal(data.default_size, 64);
  assert.deepEqual(
    [...data.ranked_ids].sort((a: number, b: number) => a - b),
    Array.from({ length: V }, (_, i) => i),
  );
  const tok = await loadTokenizer(TINY);
  const the = tok.encode("the", { addSpecialTokens: false });
  assert.equal(data.ranked_ids[0], the[0], "the most frequent token first");
  // "held out" appears only in the held-out line: its tokens were not counted, so they rank among the unseen.
  assert.ok(data.distinct_tokens_seen < V);

  const b = await runCli("tools/bench_draft_vocab.ts", [
    "--target",
    TINY,
    "--drafter",
    dir,
    "--sizes",
    "all,64",
    "--widths",
    "2",
    "--backends",
    "cpu,onnx-node",
  ]);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /^cpu +2 +[\d.]+ +[\d.]+ \([\d.]+x\)$/m);
  assert.match(b.stdout, /^onnx-node +2 +[\d.]+ +[\d.]+ \([\d.]+x\)$/m);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("tools/draft_vocab.ts --target --contexts ranks by the target's own greedy continuations", async () => {
  // rankByCount: the generated count first, then the corpus count, then the id
  const gen = new Float64Array([0, 2, 5, 2, 0]), corpus = new Float64Array([9, 1, 0, 3, 0]);
  assert.deepEqual(rankByCount(gen, corpus), [2, 3, 1, 0, 4]);
  assert.deepEqual(rankByCount(corpus), [0, 3, 1, 2, 4]);
  // sampleWindows: seeded, windows lie inside texts long enough
  const texts = [Int32Array.from([1, 2]), Int32Array.from([10, 11, 12, 13, 14, 15])];
  const w = sampleWindows(texts, 8, 3, 5);
  assert.deepEqual(w, sampleWindows(texts, 8, 3, 5));
  for (const x of w) assert.ok(x.length === 3 && x[0] >= 10 && x[2] === x[0] + 2);
  assert.throws(() => sampleWindows(texts, 1, 7, 0), /no corpus text holds the 7 tokens/);

  const dir = Deno.makeTempDirSync({ prefix: "draft-vocab-gen-" });
  Deno.writeTextFileSync(
    `${dir}/corpus.txt`,
    "the cat sat on the mat and the dog sat too\n\nonce upon a time\n",
  );
  const run = (out: string) =>
    runCli("tools/draft_vocab.ts", [
      ...["--target", TINY, "--contexts", "6", "--context-len", "3", "--new-tokens", "4", "--batch", "4"],
      ...["--seed", "1", "--out", out, `${dir}/corpus.txt`],
    ]);
  const r = await run(`${dir}/a.json`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /the top 512 cover [\d.]+% of the generated tokens$/m);
  const data = JSON.parse(Deno.readTextFileSync(`${dir}/a.json`));
  assert.deepEqual(
    { contexts: data.generated.contexts, tokens: data.generated.tokens, seed: data.generated.seed },
    { contexts: 6, tokens: 24, seed: 1 },
  );
  // The same windows continued in-process give the counts the ranking must follow.
  const tok = await loadTokenizer(TINY);
  const ids = ["the cat sat on the mat and the dog sat too", "once upon a time"].map((t) =>
    Int32Array.from(tok.encode(t, { addSpecialTokens: false }))
  );
  const model = createCpuModel(await loadCheckpoint(TINY), { threads: 1 });
  const out = await generate(model, sampleWindows(ids, 6, 3, 1), { maxNewTokens: 4, eosIds: [] });
  const counts = new Float64Array(tok.vocabSize);
  for (const row of out.ids) for (const id of row) counts[id]++;
  const ranked: number[] = data.ranked_ids;
  assert.equal(ranked.length, tok.vocabSize);
  for (let i = 1; i < ranked.length; i++) assert.ok(counts[ranked[i - 1]] >= counts[ranked[i]], `rank ${i}`);
  assert.equal(counts[ranked[0]], Math.max(...counts));
  // same seed, same file
  assert.equal((await run(`${dir}/b.json`)).code, 0);
  assert.equal(Deno.readTextFileSync(`${dir}/b.json`), Deno.readTextFileSync(`${dir}/a.json`));
  const bad = await runCli("tools/draft_vocab.ts", [
    "--tokenizer",
    TINY,
    "--contexts",
    "2",
    "--out",
    "x",
    "f",
  ]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--contexts needs --target DIR/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("tools/bench_head_screen.ts and tools/ab_cpu_checkouts.ts time top-1 calls, ids checked equal", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const screen = await runCli("tools/bench_head_screen.ts", [
    ...["--dir", LLAMA, "--calls", "1,3", "--rounds", "1", "--reps", "2", "--prompt", "4"],
  ]);
  assert.equal(screen.code, 0, screen.stderr);
  assert.match(screen.stdout, /^\| +1 \| +[\d.]+ \| +[\d.]+ \| [\d.]+x \|$/m);
  assert.match(screen.stdout, /screened rows: \d+, mean candidates recomputed per row: [\d.]+/);
  const ab = await runCli("tools/ab_cpu_checkouts.ts", [
    ...["--a", root, "--b", root, "--dir", LLAMA, "--calls", "1,2", "--rounds", "1", "--reps", "2"],
    ...["--prompt", "4"],
  ]);
  assert.equal(ab.code, 0, ab.stderr);
  assert.match(ab.stdout, /^\| +2 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$/m);
  const bad = await runCli("tools/ab_cpu_checkouts.ts", ["--a", root, "--b", "/nonexistent"]);
  assert.notEqual(bad.code, 0);
  assert.match(
    bad.stderr,
    /\/nonexistent: no loader\/checkpoint\.ts \(is it a checkout of this repository\?\)/,
  );
});

Deno.test("tools/profile_default.ts: --drafter times two checkpoints against one interleaved baseline", async () => {
  const d = "models/default/drafter";
  const r = await runCli("tools/profile_default.ts", [
    "--prompts",
    "1",
    "--tokens",
    "6",
    "--reps",
    "1",
    "--shapes",
    "1x2",
    "--threads",
    "1",
    "--drafter-weights",
    "q8@2048",
    "--drafter",
    `${d},${d}/`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  // one row per checkpoint, labelled by its folder's name, with the same tau (the same drafter twice)
  const rows = [...r.stdout.matchAll(/^1x2 +\| drafter:q8@2048 \| ([\d.]+) \|/gm)];
  assert.equal(rows.length, 2, r.stdout);
  assert.equal(rows[0][1], rows[1][1]);
  assert.match(r.stdout, /all ReDrafter outputs equal autoregression/);
});

Deno.test("tools: --help prints the tool's header comment; a bad flag is one line naming it, exit code 2", async () => {
  assert.equal(
    headerComment("/**\n * Line one.\n *\n *   usage --x\n *\n * @module\n */\ncode"),
    "Line one.\n\n  usage --x",
  );
  assert.equal(headerComment("const x = 1; /** not a header */"), "");
  const help = await runCli("tools/bench_onnx.ts", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Autoregressive decode speed per ONNX provider/);
  assert.match(help.stdout, /deno run -A --unstable-webgpu tools\/bench_onnx.ts \[--providers/);
  assert.doesNotMatch(help.stdout, /@module|^\s*\*/m);
  const bad = await runCli("tools/profile_default.ts", ["--bogus", "1"]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^error: unknown flag --bogus \(known flags: .*--drafter, .*\) \(--help for usage\)\n$/,
  );
  const missing = await runCli("tools/bench_cpu.ts", ["--calls"]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "error: --calls needs a value (--help for usage)\n");
});

Deno.test("tools/profile_forward.ts: a row of stage times per call size and thread count", async () => {
  const r = await runCli("tools/profile_forward.ts", [
    "--dir",
    LLAMA,
    "--threads",
    "1,2",
    "--calls",
    "1,3",
    "--context",
    "5",
    "--reps",
    "3",
    "--rounds",
    "1",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split("\n").filter((l) => /^\d+ \| \d+ \|/.test(l)).map((l) =>
    l.split(" | ").map(Number)
  );
  assert.deepEqual(rows.map((c) => c.slice(0, 2)), [[1, 1], [1, 2], [3, 1], [3, 2]]);
  for (const c of rows) {
    assert.equal(c.length, 13);
    const stages = c.slice(2, 12).reduce((a, b) => a + b, 0);
    assert.ok(stages > 0 && stages <= c[12] + 10, `stage µs ${stages} within the wall ${c[12]} (rounding)`);
  }
  const bad = await runCli("tools/profile_forward.ts", ["--dir", LLAMA, "--calls", "0"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--calls must be a positive integer/);
});
