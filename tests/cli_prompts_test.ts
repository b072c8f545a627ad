import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { batches, detectFormat, parsePrompts, readPrompts } from "../cli/prompts.ts";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/prompts/${name}`, import.meta.url));
const mtBench = fileURLToPath(new URL("../../shared/data/mt_bench/question.jsonl", import.meta.url));

Deno.test({
  name: "MT-bench question.jsonl from ../shared: 80 questions, first turn or both",
  ignore: !existsSync(mtBench),
  fn: async () => {
    const one = await readPrompts(mtBench);
    assert.equal(one.format, "mt-bench");
    assert.equal(one.prompts.length, 80);
    assert.equal(one.prompts[0].id, "81");
    assert.equal(one.prompts[0].category, "writing");
    assert.ok(one.prompts.every((p) => p.turns.length === 1 && p.turns[0].length > 0));
    assert.equal(new Set(one.prompts.map((p) => p.id)).size, 80);
    const two = await readPrompts(mtBench, { turns: 2 });
    assert.ok(two.prompts.every((p) => p.turns.length === 2));
    assert.equal(two.prompts[0].turns[0], one.prompts[0].turns[0]);
    assert.match(two.prompts[0].turns[1], /^Rewrite your previous response/);
    const ten = await readPrompts(mtBench, { maxNumPrompts: 10 });
    assert.deepEqual(ten.prompts, one.prompts.slice(0, 10));
    assert.deepEqual(batches(one.prompts, 32).map((b) => b.length), [32, 32, 16]);
  },
});

Deno.test("MT-bench fixture: blank lines skipped, ids, categories, turns=2", async () => {
  const set = await readPrompts(fixture("mt_bench_small.jsonl"));
  assert.equal(set.format, "mt-bench");
  assert.deepEqual(set.prompts.map((p) => [p.id, p.category, p.line]), [
    ["81", "writing", 1],
    ["101", "reasoning", 2],
    ["121", "coding", 4],
  ]);
  assert.deepEqual(set.prompts[1].turns, ["If I overtake the second person, what position am I in?"]);
  const two = await readPrompts(fixture("mt_bench_small.jsonl"), { turns: 2, maxNumPrompts: 2 });
  assert.deepEqual(two.prompts.map((p) => p.turns[1]), [
    "Now make it rhyme.",
    "And if I overtake the last person?",
  ]);
});

Deno.test("JSONL {prompt} fixture keeps escapes and optional ids", async () => {
  const set = await readPrompts(fixture("prompts.jsonl"));
  assert.equal(set.format, "jsonl");
  assert.deepEqual(set.prompts.map((p) => p.id), ["1", "math-1", "3"]);
  assert.equal(set.prompts[2].turns[0], 'Translate "hello" into French.\nOnly the word.');
  await assert.rejects(
    readPrompts(fixture("prompts.jsonl"), { turns: 2 }),
    /prompts\.jsonl: two turns need an MT-bench/,
  );
});

Deno.test("plain text fixture: one prompt per line, CRLF and blank lines handled", async () => {
  const set = await readPrompts(fixture("prompts.txt"));
  assert.equal(set.format, "text");
  assert.deepEqual(set.prompts.map((p) => p.turns[0]), [
    "Once upon a time",
    "The capital of France is",
    'Line with {braces} and "quotes"',
  ]);
  assert.deepEqual(set.prompts.map((p) => p.id), ["1", "4", "5"]);
});

Deno.test("malformed input names the file and line", async () => {
  await assert.rejects(readPrompts(fixture("bad_json.jsonl")), (e: Error) => {
    assert.match(e.message, /bad_json\.jsonl:3: invalid JSON/);
    return true;
  });
  await assert.rejects(
    readPrompts(fixture("bad_field.jsonl")),
    /bad_field\.jsonl:2: "turns" must be a non-empty array of strings/,
  );
  assert.throws(
    () => parsePrompts('{"prompt": "a"}\n{"text": "b"}\n', "p.jsonl"),
    /^Error: p\.jsonl:2: expected \{"prompt"/,
  );
  assert.throws(
    () => parsePrompts('{"prompt": "a"}\n[1, 2]\n', "p.jsonl"),
    /p\.jsonl:2: expected a JSON object, got an array/,
  );
  assert.throws(
    () => parsePrompts('{"turns": ["a"]}\n', "q.jsonl", { turns: 2 }),
    /q\.jsonl:1: has 1 turn\(s\), 2 were asked for/,
  );
  assert.throws(() => parsePrompts("\n  \n", "empty.txt"), /empty\.txt: no prompts/);
  await assert.rejects(readPrompts(fixture("missing.jsonl")), /missing\.jsonl: prompt file not found/);
  assert.throws(
    () => parsePrompts("a\n", "x", { maxNumPrompts: 0 }),
    /maxNumPrompts must be a positive integer/,
  );
});

Deno.test("maxNumPrompts stops before a later malformed line; format can be forced", () => {
  const text = '{"prompt": "a"}\n{"prompt": "b"}\nnot json\n';
  assert.equal(parsePrompts(text, "p", { maxNumPrompts: 2 }).prompts.length, 2);
  assert.throws(() => parsePrompts(text, "p"), /p:3: invalid JSON/);
  const forced = parsePrompts(text, "p", { format: "text" });
  assert.deepEqual(forced.prompts.map((p) => p.turns[0]), ['{"prompt": "a"}', '{"prompt": "b"}', "not json"]);
  assert.equal(detectFormat("\n\nhello {"), "text");
  assert.equal(detectFormat('\ufeff{"turns": ["x"]}'), "mt-bench");
  assert.equal(parsePrompts('\ufeff{"turns": ["x"]}\n', "bom.jsonl").format, "mt-bench");
});

Deno.test("batches keeps the last partial batch and rejects bad sizes", () => {
  assert.deepEqual(batches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(batches([1, 2], 4), [[1, 2]]);
  assert.deepEqual(batches([], 3), []);
  assert.throws(() => batches([1], 0), /batch size must be a positive integer/);
});
