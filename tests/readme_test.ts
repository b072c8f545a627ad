// The README's library example is real code: run it as written (from the repository root) and check that
// it generates text with the embedded default pair and reports tau.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("README library example runs and prints text and tau", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.split("## Library")[1];
  assert.ok(section, "README has a '## Library' section");
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, "the Library section has a ts code block");
  const file = `${ROOT}.readme_example.ts`;
  await Deno.writeTextFile(file, code);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", file],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    // `console.log(text, tau)`: some generated text, then tau >= 1.
    const m = /^([\s\S]+) (\d+(?:\.\d+)?)\n$/.exec(stdout);
    assert.ok(m, `unexpected output: ${JSON.stringify(stdout)}`);
    assert.ok(m[1].trim().length > 10, "generated text is not empty");
    assert.ok(Number(m[2]) >= 1, `tau ${m[2]} >= 1`);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
});
