import assert from "node:assert/strict";
import {
  checkRange,
  choiceFlag,
  intFlag,
  intListFlag,
  numberFlag,
  parseFlags,
  requiredFlag,
  runMain,
  UsageError,
} from "../cli/args.ts";

const options = {
  model: { type: "string", short: "m" },
  "beam-width": { type: "string" },
  temperature: { type: "string" },
  verbose: { type: "boolean" },
} as const;

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${e}`);
    assert.ok(!e.message.includes("\n"), `message should be one line: ${JSON.stringify(e.message)}`);
    return e.message;
  }
  assert.fail("expected a UsageError");
}

Deno.test("parseFlags returns typed values", () => {
  const { values } = parseFlags(["-m", "dir", "--beam-width=4", "--verbose"], options);
  assert.equal(values.model, "dir");
  assert.equal(values["beam-width"], "4");
  assert.equal(values.verbose, true);
});

Deno.test("parseFlags: unknown flag, missing value, flag as value, value on boolean, positional", () => {
  assert.match(
    usage(() => parseFlags(["--beam-wdith", "4"], options)),
    /^unknown flag --beam-wdith \(known flags: .*--beam-width/,
  );
  assert.equal(usage(() => parseFlags(["--model"], options)), "--model needs a value");
  assert.match(
    usage(() => parseFlags(["--model", "--verbose"], options)),
    /^--model needs a value \(got another flag/,
  );
  assert.equal(usage(() => parseFlags(["--verbose=yes"], options)), "--verbose takes no value");
  assert.match(usage(() => parseFlags(["stray"], options)), /^unexpected argument 'stray'/);
  const { positionals } = parseFlags(["a.txt"], options, true);
  assert.deepEqual(positionals, ["a.txt"]);
});

Deno.test("intFlag / numberFlag / intListFlag parse strictly and name the flag", () => {
  const v = (o: Record<string, string>) => o;
  assert.equal(intFlag(v({}), "beam-width", 8), 8);
  assert.equal(intFlag(v({ "beam-width": "16" }), "beam-width", 8, { min: 1, max: 64 }), 16);
  for (const bad of ["abc", "1.5", "", "4x", "1e3"]) {
    assert.match(
      usage(() => intFlag(v({ "beam-width": bad }), "beam-width", 8)),
      /^--beam-width must be an integer/,
    );
  }
  assert.equal(
    usage(() => intFlag(v({ "beam-width": "0" }), "beam-width", 8, { min: 1, max: 64 })),
    "--beam-width must be between 1 and 64, got 0",
  );
  assert.match(usage(() => intFlag(v({ n: "99999999999999999999" }), "n", 1)), /too large/);

  assert.equal(numberFlag(v({ temperature: "0.7" }), "temperature", 1), 0.7);
  assert.equal(
    usage(() => numberFlag(v({ temperature: "hot" }), "temperature", 1)),
    "--temperature must be a number, got 'hot'",
  );
  assert.equal(
    usage(() => numberFlag(v({ temperature: "-1" }), "temperature", 1, { min: 0 })),
    "--temperature must be at least 0, got -1",
  );
  assert.match(usage(() => numberFlag(v({ temperature: "Infinity" }), "temperature", 1)), /must be a number/);

  assert.deepEqual(intListFlag(v({ widths: "1, 2,4" }), "widths", [8]), [1, 2, 4]);
  assert.deepEqual(intListFlag(v({}), "widths", [8]), [8]);
  assert.match(usage(() => intListFlag(v({ widths: "1,,4" }), "widths", [])), /comma-separated/);
  assert.equal(
    usage(() => intListFlag(v({ widths: "1,100" }), "widths", [], { max: 64 })),
    "--widths must be at most 64, got 100",
  );
});

Deno.test("choiceFlag, requiredFlag, checkRange", () => {
  assert.equal(choiceFlag({ backend: "cpu" }, "backend", ["cpu", "onnx", "webgpu"], "onnx"), "cpu");
  assert.equal(choiceFlag({}, "backend", ["cpu", "onnx"], "onnx"), "onnx");
  assert.equal(
    usage(() => choiceFlag({ backend: "cuda" }, "backend", ["cpu", "onnx"], "cpu")),
    "--backend must be one of cpu, onnx; got 'cuda'",
  );
  assert.equal(usage(() => requiredFlag({}, "model")), "--model is required");
  assert.equal(requiredFlag({ model: "x" }, "model"), "x");
  assert.equal(checkRange("beam-length", 5, 2, 5), 5);
  assert.equal(
    usage(() => checkRange("beam-length", 6, 2, 5)),
    "--beam-length must be between 2 and 5, got 6",
  );
});

Deno.test("runMain: exit 2 for usage errors, 1 for others, nothing on success", async () => {
  const seen: { lines: string[]; codes: number[] } = { lines: [], codes: [] };
  const sink = { error: (l: string) => seen.lines.push(l), exit: (c: number) => seen.codes.push(c) };
  await runMain((argv) => void parseFlags(argv, options), ["--nope"], sink);
  await runMain(
    () => {
      throw new Error("model.safetensors: tensor 'lm_head.weight' missing");
    },
    [],
    sink,
  );
  await runMain(() => 0, [], sink);
  await runMain(async () => await Promise.resolve(3), [], sink);
  assert.deepEqual(seen.codes, [2, 1, 3]);
  assert.match(seen.lines[0], /^error: unknown flag --nope/);
  assert.equal(seen.lines[1], "error: model.safetensors: tensor 'lm_head.weight' missing");
});

Deno.test("a CLI built on runMain exits 2 with one line on stderr", async () => {
  const script = new URL("../cli/args.ts", import.meta.url).href;
  const code = `import { parseFlags, runMain, intFlag } from "${script}";
    await runMain((argv) => { const { values } = parseFlags(argv, { n: { type: "string" } }); intFlag(values, "n", 1); });`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code, "--", "--n", "x"],
    stderr: "piped",
    stdout: "piped",
  })
    .output();
  // `deno eval` passes args after "--" (Deno.args starts after the script).
  assert.equal(out.code, 2);
  assert.equal(new TextDecoder().decode(out.stderr), "error: --n must be an integer, got 'x'\n");
});
