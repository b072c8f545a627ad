/**
 * cli/bench.ts as a subprocess on the tiny chat fixture: the sweep covers every (mode, W, L), ReDrafter
 * outputs equal the baseline's for greedy and exact sampling, and bench.json plus the SVG charts are written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PROMPTS, runCli, TINY, TINY_DRAFTER } from "./support/cli.ts";
import { defaultTreeList, driftWarnings, recommendedLine } from "../cli/bench.ts";

Deno.test("bench: sweep, recommendation, bench.json and SVG charts", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-" });
  const r = await runCli("cli/bench.ts", [
    "--model",
    TINY,
    "--drafter",
    TINY_DRAFTER,
    "--prompts",
    join(PROMPTS, "prompts.jsonl"),
    "--num-prompts",
    "2",
    "--max-new-tokens",
    "12",
    "--beam-widths",
    "1,3",
    "--beam-lengths",
    "2,4,5",
    "--out",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /recommended on this machine for cpu \(greedy\): --beam-width \d --beam-length \d/);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  assert.equal(report.results.length, 2 * 2 * 3, "modes x widths x lengths");
  for (const x of report.results) {
    assert.equal(x.identical, true, `${x.mode} W=${x.beamWidth} L=${x.beamLength}`);
    assert.equal(x.histogram.length, x.beamLength);
    assert.ok(x.tau >= 1 && x.tau <= x.beamLength);
    assert.ok(x.speedup > 0);
    assert.deepEqual(x.speedups, [x.speedup], "one repeat: its own speedup");
    assert.ok(Number.isFinite(x.decodeSpeedup) && x.decodeSpeedup > 0, `decode speedup ${x.decodeSpeedup}`);
  }
  assert.match(r.stdout, /tok\/s +speedup +decode only +same as AR/);
  // The oracle drafter: greedy with one beam of length 5 accepts nearly every draft.
  const g = report.results.find((x: { mode: string; beamWidth: number; beamLength: number }) =>
    x.mode === "greedy" && x.beamWidth === 1 && x.beamLength === 5
  );
  assert.ok(g.tau > 4, `tau ${g.tau}`);
  assert.equal(report.baselines.length, 2);
  for (const b of report.baselines) {
    // timed interleaved with the shapes: over both halves of the batches, and over all of them
    assert.ok(b.firstHalf > 0 && b.secondHalf > 0 && b.tokensPerSecond > 0, JSON.stringify(b));
  }
  for (const name of ["speedup_cpu_greedy.svg", "speedup_cpu_exact.svg", "accepted_cpu_greedy.svg"]) {
    const svg = await Deno.readTextFile(join(out, name));
    assert.match(svg, /<svg[\s\S]*<\/svg>\s*$/);
  }
});

Deno.test("bench --repeats: every shape's speedup is the median of one per repeat, shown with its range", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-" });
  const r = await runCli("cli/bench.ts", [
    ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
    ...["--num-prompts", "2", "--max-new-tokens", "8", "--beam-widths", "1", "--beam-lengths", "2,4"],
    ...["--modes", "greedy", "--repeats", "3", "--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  assert.equal(report.settings.repeats, 3);
  for (const x of report.results) {
    assert.equal(x.speedups.length, 3);
    const sorted = [...x.speedups].sort((a: number, b: number) => a - b);
    assert.equal(x.speedup, sorted[1]);
    assert.equal(x.identical, true);
    assert.ok(
      r.stdout.includes(`${x.speedup.toFixed(2)}x (${sorted[0].toFixed(2)}-${sorted[2].toFixed(2)})`),
      r.stdout,
    );
  }
});

for (const modes of [["branch"], ["first"], ["branch", "first"]]) {
  Deno.test(`bench --lookup, --lookup-mode ${modes}: sweep dimensions, identical outputs, recommended with its flags`, async () => {
    const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-lookup-" });
    const r = await runCli("cli/bench.ts", [
      ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
      ...["--num-prompts", "2", "--max-new-tokens", "12", "--beam-widths", "1", "--beam-lengths", "2,3"],
      ...["--lookup", "0,3", "--out", out],
      ...(modes[0] === "branch" && modes.length === 1 ? [] : ["--lookup-mode", modes.join(",")]),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
    type Row = { mode: string; beamLength: number; lookup: number; lookupMode: string; identical: boolean };
    const shapes = report.results.map((x: Row) =>
      `${x.mode} L=${x.beamLength} K=${x.lookup}${x.lookup ? ` ${x.lookupMode}` : ""}`
    );
    const want = ["exact", "greedy"].flatMap((m) =>
      [2, 3].flatMap((L) => [`${m} L=${L} K=0`, ...modes.map((M) => `${m} L=${L} K=3 ${M}`)])
    );
    assert.deepEqual(shapes.sort(), want.sort());
    for (const x of report.results) assert.equal(x.identical, true, JSON.stringify(x));
    assert.match(r.stdout, /W +L +lookup +tau/);
    if (modes.includes("first")) assert.match(r.stdout, /\b3 first\b/);
    const top = report.recommended[0];
    const flags = top.lookup
      ? ` --lookup ${top.lookup}${top.lookupMode === "first" ? " --lookup-mode first" : ""}`
      : "";
    assert.match(r.stdout, new RegExp(`--beam-length ${top.beamLength}${flags} \\(`));
    const charts = [
      "speedup_cpu_greedy.svg",
      ...modes.map((M) => `speedup_cpu_greedy_lookup3${M === "first" ? "_first" : ""}.svg`),
    ];
    for (const name of charts) {
      assert.match(await Deno.readTextFile(join(out, name)), /<svg[\s\S]*<\/svg>\s*$/);
    }
    Deno.removeSync(out, { recursive: true });
  });
}

Deno.test("bench --lookup-length fixed,match: one more sweep dimension, identical outputs, flags and charts", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-lookup-length-" });
  const r = await runCli("cli/bench.ts", [
    ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
    ...["--num-prompts", "2", "--max-new-tokens", "12", "--beam-widths", "1", "--beam-lengths", "2"],
    ...["--modes", "greedy", "--lookup", "0,3", "--lookup-mode", "first", "--lookup-length", "fixed,match"],
    ...["--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  type Row = { lookup: number; lookupMode: string; lookupLength: string; identical: boolean };
  const settings = report.results.map((x: Row) => `${x.lookup} ${x.lookupMode} ${x.lookupLength}`);
  assert.deepEqual(settings.sort(), ["0 branch fixed", "3 first fixed", "3 first match"]);
  for (const x of report.results) assert.equal(x.identical, true, JSON.stringify(x));
  assert.match(r.stdout, /\b3 first match\b/);
  const top = report.recommended[0];
  const flags = top.lookup
    ? ` --lookup 3 --lookup-mode first${top.lookupLength === "match" ? " --lookup-length match" : ""}`
    : "";
  assert.match(r.stdout, new RegExp(`--beam-length 2${flags} \\(`));
  for (const name of ["speedup_cpu_greedy_lookup3_first.svg", "speedup_cpu_greedy_lookup3_first_match.svg"]) {
    assert.match(await Deno.readTextFile(join(out, name)), /<svg[\s\S]*<\/svg>\s*$/);
  }
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench --adaptive on: plain rounds in the ReDrafter runs, identical outputs, recorded and recommended", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-adaptive-" });
  const args = [
    ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
    ...["--num-prompts", "2", "--max-new-tokens", "24", "--beam-widths", "1", "--beam-lengths", "2"],
    ...["--modes", "greedy,exact", "--out", out],
  ];
  const on = await runCli("cli/bench.ts", [...args, "--adaptive", "on"]);
  assert.equal(on.code, 0, on.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  assert.equal(report.settings.adaptive, "on");
  for (const x of report.results) assert.equal(x.identical, true, JSON.stringify(x));
  // Every run probes plain rounds after its first 4 drafting rounds (core/adaptive.ts).
  for (const x of report.results) assert.ok(x.plainSteps > 0, JSON.stringify(x));
  assert.match(on.stdout, /--beam-length 2 --adaptive on \(/);
  // Off (the default) in both modes, exact sampling too, where generate's --adaptive auto would turn it on.
  const off = await runCli("cli/bench.ts", args);
  assert.equal(off.code, 0, off.stderr);
  const offReport = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  assert.equal(offReport.settings.adaptive, "off");
  for (const x of offReport.results) assert.equal(x.plainSteps, 0, JSON.stringify(x));
  assert.doesNotMatch(off.stdout, /--adaptive/);
  const bad = await runCli("cli/bench.ts", [...args, "--adaptive", "auto"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--adaptive must be one of on, off; got 'auto'/);
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench --tree-nodes: draft trees as a sweep dimension, identical outputs, recommended with flags", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-tree-" });
  const r = await runCli("cli/bench.ts", [
    ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
    ...["--num-prompts", "2", "--max-new-tokens", "12", "--beam-widths", "2", "--beam-lengths", "3,5"],
    ...["--tree-nodes", "0,4", "--tree-children", "3", "--lookup", "0,2", "--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  type Row = { mode: string; beamLength: number; lookup: number; treeNodes: number; identical: boolean };
  const shapes = report.results.map((x: Row) => `${x.mode} L=${x.beamLength} N=${x.treeNodes} K=${x.lookup}`);
  const want = ["exact", "greedy"].flatMap((m) =>
    [3, 5].flatMap((L) => [0, 4].flatMap((N) => [0, 2].map((K) => `${m} L=${L} N=${N} K=${K}`)))
  );
  assert.deepEqual(shapes.sort(), want.sort());
  for (const x of report.results) assert.equal(x.identical, true, JSON.stringify(x));
  assert.equal(report.settings.treeChildren, 3);
  assert.match(r.stdout, /W +L +tree +lookup +tau/);
  const top = report.recommended[0];
  const flags = (top.treeNodes ? ` --tree-nodes ${top.treeNodes} --tree-children 3` : "") +
    (top.lookup ? ` --lookup ${top.lookup}` : "");
  assert.match(r.stdout, new RegExp(`--beam-length ${top.beamLength}${flags} \\(`));
  for (const name of ["speedup_cpu_greedy_tree4.svg", "speedup_cpu_exact_tree4_lookup2.svg"]) {
    assert.match(await Deno.readTextFile(join(out, name)), /draft tree of 4 nodes[\s\S]*<\/svg>\s*$/);
  }
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench --draft-vocab: draft vocabularies as a sweep dimension on the default pair", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-vocab-" });
  const r = await runCli("cli/bench.ts", [
    ...["--num-prompts", "1", "--max-new-tokens", "8", "--modes", "greedy", "--threads", "1"],
    ...["--beam-widths", "1", "--beam-lengths", "2,3", "--draft-vocab", "all,2048", "--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  type Row = { beamLength: number; draftVocab: number; identical: boolean };
  const shapes = report.results.map((x: Row) => `L=${x.beamLength} V=${x.draftVocab}`);
  assert.deepEqual(shapes.sort(), ["L=2 V=2048", "L=2 V=8192", "L=3 V=2048", "L=3 V=8192"]);
  for (const x of report.results) assert.equal(x.identical, true, JSON.stringify(x));
  assert.deepEqual(report.settings.draftVocab.sort(), [2048, 8192]);
  assert.match(r.stdout, /W +L +vocab +tau/);
  assert.match(r.stdout, new RegExp(`--draft-vocab ${report.recommended[0].draftVocab} \\(`));
  assert.match(
    await Deno.readTextFile(join(out, "speedup_cpu_greedy_vocab2048.svg")),
    /draft vocabulary 2048/,
  );
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench with several backends: autoregression and ReDrafter against the CPU reference", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-vs-cpu-" });
  const r = await runCli("cli/bench.ts", [
    ...["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", join(PROMPTS, "prompts.jsonl")],
    ...["--backend", "onnx-wasm,cpu", "--num-prompts", "1", "--max-new-tokens", "8", "--modes", "greedy"],
    ...["--beam-widths", "1", "--beam-lengths", "3", "--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "bench.json")));
  const ar = (b: string) =>
    report.baselines.find((x: { backend: string }) => x.backend === b).tokensPerSecond;
  const rd = report.results.find((x: { backend: string }) => x.backend === "onnx-wasm").tokensPerSecond;
  assert.match(r.stdout, /AR x cpu +ReDrafter x cpu AR/);
  assert.match(r.stdout, /\ncpu +greedy .* 1\.00x +[\d.]+x\n/);
  const wasm = new RegExp(
    `onnx-wasm +greedy .* ${(ar("onnx-wasm") / ar("cpu")).toFixed(2)}x +${(rd / ar("cpu")).toFixed(2)}x`,
  );
  assert.match(r.stdout, wasm);
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench --suite ar: each backend against the CPU reference, on the models asked for", async () => {
  const out = Deno.makeTempDirSync({ prefix: "redrafter-bench-ar-" });
  const r = await runCli("cli/bench.ts", [
    "--suite",
    "ar",
    "--ar-models",
    "default",
    "--backend",
    "onnx-node,cpu",
    "--max-new-tokens",
    "6",
    "--repeats",
    "1",
    "--out",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(Deno.readTextFileSync(join(out, "bench_ar.json")));
  assert.deepEqual(rows.map((x: { model: string; backend: string }) => [x.model, x.backend]), [
    ["default target 16M", "cpu"],
    ["default target 16M", "onnx-node"],
  ]);
  const [cpu, node] = rows;
  assert.equal(cpu.vsCpuReference, 1);
  assert.ok(Math.abs(node.vsCpuReference - node.tokensPerSecond / cpu.tokensPerSecond) < 1e-9);
  assert.match(r.stdout, /x cpu reference/);
  assert.match(
    r.stdout,
    new RegExp(`onnx-node +${node.tokensPerSecond.toFixed(1)} +${node.vsCpuReference.toFixed(2)}x`),
  );
  Deno.removeSync(out, { recursive: true });
});

Deno.test("bench: bad flags give one line and exit code 2", async () => {
  for (
    const [args, pattern] of [
      [["--beam-lengths", "1,2"], /--beam-lengths must be/],
      [["--modes", "greedy,fast"], /--modes must list values from greedy, exact/],
      [["--backend", "cpu,tpu"], /--backend must be one of/],
      [["--suite", "speed"], /--suite must be redrafter or ar/],
      [
        ["--lookup", "2", "--lookup-mode", "branch,later"],
        /--lookup-mode must list values from branch, first/,
      ],
      [["--lookup-mode", "first"], /--lookup-mode needs --lookup with a value of 1 or more/],
      [["--lookup-length", "match"], /--lookup-length needs --lookup with a value of 1 or more/],
      [
        ["--lookup", "2", "--lookup-length", "fixed,long"],
        /--lookup-length must list values from fixed, match/,
      ],
      [["--tree-children", "2"], /--tree-children needs --tree-nodes with a value of 1 or more/],
      [["--tree-nodes", "0,4", "--no-tree"], /--tree-nodes needs tree verification; drop --no-tree/],
      [["--tree-nodes", "300"], /--tree-nodes must be/],
      [["--draft-vocab", "all,10"], /--draft-vocab must be at least 50, got 10/],
      [
        ["--model", TINY, "--drafter", TINY_DRAFTER, "--draft-vocab", "64"],
        /--draft-vocab: .*draft_vocab.json: not found/,
      ],
      [
        ["--suite", "ar", "--ar-models", "default,gpt2"],
        /--ar-models must list values from stories260k, random-25m/,
      ],
      [["--onnx-weights", "q4"], /--onnx-weights applies to the onnx-\* backends/],
      [["--backend", "onnx-node", "--onnx-weights", "fp8"], /--onnx-weights must be one of/],
      [
        ["--backend", "cpu,onnx-node", "--drafter-weights", "fp16"],
        /--drafter-weights fp16 applies to the onnx-\* backends/,
      ],
      [
        ["--backend", "onnx-node", "--drafter-backend", "onnx-wasm"],
        /--drafter-backend must be cpu or the target's --backend \(onnx-node\); got 'onnx-wasm'/,
      ],
      [
        ["--model", TINY, "--drafter", TINY_DRAFTER, "--prompts", "/no/such.jsonl"],
        /no\/such\.jsonl: prompt file not found/,
      ],
    ] as [string[], RegExp][]
  ) {
    const r = await runCli("cli/bench.ts", args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});

Deno.test("bench: a baseline whose halves differ by more than 10% gets a warning, unless repeated", () => {
  const b = (firstHalf: number, secondHalf: number) => ({
    backend: "cpu",
    mode: "greedy" as const,
    tokensPerSecond: (firstHalf + secondHalf) / 2,
    firstHalf,
    secondHalf,
  });
  const [w] = driftWarnings([b(201.8, 266.6)], 1);
  assert.match(w, /cpu \(greedy\) baseline ran at 201\.8 tok\/s .* 266\.6 .*\(32% apart\).*--repeats 3/);
  assert.deepEqual(driftWarnings([b(266.6, 201.8)], 1).length, 1, "either direction");
  assert.deepEqual(driftWarnings([b(351.6, 376.7)], 1), [], "7% is within the noise");
  assert.deepEqual(driftWarnings([b(201.8, 266.6)], 3), [], "repeats show their range instead");
});

Deno.test("recommendedLine: the best shape's generate flags, and a note when autoregression was faster", () => {
  const r = {
    backend: "cpu",
    mode: "greedy" as const,
    beamWidth: 1,
    beamLength: 2,
    lookup: 4,
    lookupMode: "first" as const,
    lookupLength: "match" as const,
    treeNodes: 0,
    draftVocab: 2048,
    speedup: 1.44,
  };
  assert.equal(
    recommendedLine(r, undefined, false),
    "recommended on this machine for cpu (greedy): --beam-width 1 --beam-length 2 --lookup 4 " +
      "--lookup-mode first --lookup-length match (1.44x)",
  );
  assert.equal(
    recommendedLine({ ...r, mode: "exact", lookup: 0, treeNodes: 4, speedup: 0.92 }, 2, true),
    "recommended on this machine for cpu (exact): --beam-width 1 --beam-length 2 --tree-nodes 4 " +
      "--tree-children 2 --draft-vocab 2048 (0.92x); every shape was slower than autoregression here: " +
      "--autoregressive is faster",
  );
  assert.equal(
    recommendedLine({ backend: "onnx-node", mode: "greedy" }, undefined, false),
    "onnx-node: no result",
  );
});

Deno.test("defaultTreeList: the sweep adds the recommended 32-node tree when every backend is a GPU one", () => {
  assert.deepEqual(defaultTreeList(["onnx-webgpu"], false), [0, 32]);
  assert.deepEqual(defaultTreeList(["onnx-webgpu", "onnx-cuda"], false), [0, 32]);
  assert.deepEqual(defaultTreeList(["cpu"], false), [0]);
  assert.deepEqual(
    defaultTreeList(["cpu", "onnx-webgpu"], false),
    [0],
    "a CPU backend would pay for the tree",
  );
  assert.deepEqual(defaultTreeList(["onnx-node", "onnx-wasm"], false), [0]);
  assert.deepEqual(defaultTreeList(["onnx-webgpu"], true), [0], "--no-tree");
});
