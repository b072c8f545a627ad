// The project's own quality gates run in CI too: formatting, lint, type-check, documentation lint of the
// public API and the JSR publish dry run (no jsr: imports, no slow types).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

for (
  const args of [
    ["fmt", "--check"],
    ["lint"],
    ["check", "mod.ts", "web.ts", "cli/generate.ts", "cli/bench.ts", "cli/train.ts", "cli/serve.ts"],
    ["doc", "--lint", "mod.ts", "web.ts"],
    ["publish", "--dry-run", "--allow-dirty"],
  ]
) {
  Deno.test(`deno ${args.join(" ")} passes`, async () => {
    const out = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text.slice(-3000));
  });
}

Deno.test("no jsr: imports anywhere (JSR is unreachable from this project's machines)", () => {
  const walk = (dir: string): string[] =>
    [...Deno.readDirSync(ROOT + dir)].flatMap((e) =>
      e.isDirectory
        ? (["node_modules", ".git", ".cache"].includes(e.name) ? [] : walk(`${dir}${e.name}/`))
        : e.name.endsWith(".ts") || e.name === "deno.json"
        ? [`${dir}${e.name}`]
        : []
    );
  for (const f of walk("")) {
    assert.doesNotMatch(Deno.readTextFileSync(ROOT + f), /["']jsr:/, f);
  }
});
