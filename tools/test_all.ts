/**
 * The whole test suite: `deno test` over the TypeScript tests, then pytest over train/ when Python with torch
 * is present. Prints one plain line `N passed, N failed` (N ignored when some were) and exits non-zero
 * on any failure.
 */
const deno = Deno.execPath();

async function run(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit", env }).spawn();
  const decoder = new TextDecoder();
  let out = "";
  const reader = child.stdout.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    out += text;
    await Deno.stdout.write(value);
  }
  const status = await child.status;
  return { code: status.code, out };
}

let passed = 0, failed = 0, ignored = 0;
let anyFailure = false;

const denoResult = await run(deno, ["test", "-A", "--parallel", ...Deno.args]);
// deno test prints: "ok | 12 passed (3 steps) | 0 failed | 2 ignored (1s)"
const m = /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/.exec(
  denoResult.out,
);
if (m) {
  passed += Number(m[1]);
  failed += Number(m[2]);
  ignored += Number(m[3] ?? 0);
} else {
  console.error("tools/test_all.ts: could not find deno test's summary line");
  anyFailure = true;
}
if (denoResult.code !== 0) anyFailure = true;

const python = Deno.env.get("PYTHON") ?? "python3";
let havePython = false;
try {
  const probe = await new Deno.Command(python, { args: ["-c", "import torch, pytest"], stderr: "null" })
    .output();
  havePython = probe.success;
} catch { /* no python */ }
if (havePython && Deno.args.length === 0) {
  const py = await run(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "train/tests"]);
  for (const [, n, what] of py.out.matchAll(/(\d+) (passed|failed|error|errors|skipped)/g)) {
    if (what === "passed") passed += Number(n);
    else if (what === "skipped") ignored += Number(n);
    else failed += Number(n);
  }
  if (py.code !== 0) anyFailure = true;
} else if (Deno.args.length === 0) {
  console.error(
    "tools/test_all.ts: python3 with torch and pytest not found; train/ tests not run " +
      "(install: pip install -r train/requirements.txt)",
  );
  anyFailure = Deno.env.get("CI") === "true";
}

console.log(`${passed} passed, ${failed} failed${ignored ? `, ${ignored} ignored` : ""}`);
if (anyFailure || failed > 0) Deno.exit(1);
