/**
 * cli/mt_bench.ts: MT-bench from a local server that answers like the Hub (dataset info with a commit sha,
 * resolve URL with an ETag), cached in the huggingface_hub layout and read back offline; the Hub's
 * {"prompt": [...]} rows read as MT-bench turns; offline with nothing cached: the fallback, else one error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fetchMtBench, MT_BENCH_FILE, normalizeMtBench } from "../cli/mt_bench.ts";
import { parsePrompts } from "../cli/prompts.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";
const ROWS = [
  { question_id: 81, category: "writing", prompt: ["Write a haiku.", "Now rhyme it."], reference: [] },
  { question_id: 82, category: "math", prompt: ["What is 2+2?", "And 3+3?"], reference: ["4", "6"] },
].map((r) => JSON.stringify(r)).join("\n") + "\n";

Deno.test("mt_bench: download into the hub cache layout, then offline from the cache", async () => {
  const seen: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    seen.push(path);
    if (path === "/api/datasets/HuggingFaceH4/mt_bench_prompts/revision/main") {
      return Response.json({ sha: SHA, siblings: [{ rfilename: MT_BENCH_FILE }] });
    }
    if (path === `/datasets/HuggingFaceH4/mt_bench_prompts/resolve/${SHA}/${MT_BENCH_FILE}`) {
      return new Response(ROWS, { headers: { etag: '"abc123"' } });
    }
    return new Response("not found", { status: 404 });
  });
  const cacheDir = Deno.makeTempDirSync();
  const endpoint = `http://127.0.0.1:${server.addr.port}`;
  try {
    const online = await fetchMtBench({ endpoint, cacheDir, offline: false, log: () => {} });
    const repo = join(cacheDir, "datasets--HuggingFaceH4--mt_bench_prompts");
    assert.equal(online.path, join(repo, "snapshots", SHA, MT_BENCH_FILE));
    assert.equal(Deno.readTextFileSync(join(repo, "refs", "main")), SHA);
    assert.equal(Deno.readTextFileSync(join(repo, "blobs", "abc123")), ROWS);
    assert.ok(Deno.lstatSync(online.path).isSymlink);
    const set = parsePrompts(online.text, online.path, { turns: 2 });
    assert.equal(set.format, "mt-bench");
    assert.deepEqual(set.prompts.map((p) => [p.id, p.category, p.turns]), [
      ["81", "writing", ["Write a haiku.", "Now rhyme it."]],
      ["82", "math", ["What is 2+2?", "And 3+3?"]],
    ]);
    const offline = await fetchMtBench({ cacheDir, offline: true, fallback: "/nonexistent", log: () => {} });
    assert.equal(offline.text, online.text);
    assert.equal(offline.path, online.path);
  } finally {
    await server.shutdown();
  }
});

Deno.test("mt_bench: offline with nothing cached uses the fallback file, else fails naming the dataset", async () => {
  const cacheDir = Deno.makeTempDirSync();
  const fallback = join(cacheDir, "question.jsonl");
  Deno.writeTextFileSync(fallback, '{"question_id": 1, "turns": ["hi"]}\n');
  const logs: string[] = [];
  const src = await fetchMtBench({ cacheDir, offline: true, fallback, log: (l) => logs.push(l) });
  assert.equal(src.path, fallback);
  assert.match(logs.join("\n"), /HF_HUB_OFFLINE is set/);
  await assert.rejects(
    fetchMtBench({ cacheDir, offline: true, fallback: join(cacheDir, "none.jsonl"), log: () => {} }),
    /HF_HUB_OFFLINE is set, and no copy of HuggingFaceH4\/mt_bench_prompts is cached/,
  );
});

Deno.test("mt_bench: normalizeMtBench renames prompt arrays only", () => {
  const text = [
    '{"prompt": ["a", "b"], "question_id": 3}',
    '{"turns": ["x"]}',
    '{"prompt": "plain"}',
    "not json",
  ]
    .join("\n");
  const lines = normalizeMtBench(text).split("\n");
  assert.deepEqual(JSON.parse(lines[0]), { question_id: 3, turns: ["a", "b"] });
  assert.equal(lines[1], '{"turns": ["x"]}');
  assert.equal(lines[2], '{"prompt": "plain"}');
  assert.equal(lines[3], "not json");
});
