// Checks the committed held-out prompt set of the default model (models/default/prompts.jsonl), which
// tools/default_model/make_prompts.py cuts from held-out documents: shape, quotas, and no duplicates.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const promptsPath = fileURLToPath(new URL("../models/default/prompts.jsonl", import.meta.url));

Deno.test("default model prompts.jsonl: 100 one-or-two-sentence prompts with the recipe's quotas", () => {
  const lines = readFileSync(promptsPath, "utf-8").split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, 100);
  const perSource: Record<string, number> = {};
  const seen = new Set<string>();
  for (const [i, line] of lines.entries()) {
    const row = JSON.parse(line) as { prompt: unknown; source: unknown };
    assert.equal(typeof row.prompt, "string", `line ${i + 1}: prompt must be a string`);
    const prompt = row.prompt as string;
    assert.ok(prompt.length >= 60 && prompt.length <= 280, `line ${i + 1}: length ${prompt.length}`);
    assert.equal(prompt, prompt.trim(), `line ${i + 1}: surrounding whitespace`);
    assert.ok(!seen.has(prompt), `line ${i + 1}: duplicate prompt`);
    seen.add(prompt);
    perSource[row.source as string] = (perSource[row.source as string] ?? 0) + 1;
  }
  assert.deepEqual(perSource, { "moby-dick": 34, sotu: 33, brown: 33 });
});
