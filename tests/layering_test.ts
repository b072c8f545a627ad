// Dependencies point one way: cli/ -> backends/, loader/, drafter/ -> core/. core/ is pure TypeScript that
// imports nothing outside itself and does no I/O; nothing below cli/ imports cli/.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...sources(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function imports(file: string): string[] {
  const text = Deno.readTextFileSync(`${ROOT}${file}`);
  return [...text.matchAll(/^\s*(?:import|export)[^"';]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1])
    .concat([...text.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]));
}

Deno.test("core/ imports only core/ and uses no Deno or file-system APIs", () => {
  const files = sources("core");
  assert.ok(files.length > 5);
  for (const f of files) {
    for (const spec of imports(f)) {
      assert.ok(spec.startsWith("./"), `${f} imports ${spec}`);
    }
    const text = Deno.readTextFileSync(`${ROOT}${f}`);
    assert.doesNotMatch(text, /\bDeno\.|node:fs|node:path|fetch\(/, `${f} does I/O`);
  }
});

Deno.test("nothing outside cli/ imports cli/; drafter/ and kernels/ do not import backends/", () => {
  for (const dir of ["core", "loader", "backends", "drafter", "kernels"]) {
    for (const f of sources(dir)) {
      for (const spec of imports(f)) {
        assert.ok(!/(^|\/)cli\//.test(spec), `${f} imports ${spec}`);
        if (dir === "drafter" || dir === "kernels") {
          assert.ok(!/(^|\/)backends\//.test(spec), `${f} imports ${spec}`);
        }
      }
    }
  }
});
