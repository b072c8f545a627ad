/** cli/train.ts: without Python (or without torch) it prints the install command and exits 2. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../cli/train.ts", import.meta.url));

for (
  const [what, python] of [["missing python", "/nonexistent/python3"], ["python without torch", "false"]]
) {
  Deno.test(`deno task train: ${what} exits 2 with the install command`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "--", "--help"],
      env: { PYTHON: python },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(err.split("\n").length, 1, err);
    assert.match(err, /pip install -r train\/requirements\.txt/);
  });
}
