/**
 * tools/bench_onnx.ts as a subprocess on the tiny Llama fixture: every --weights format of every ONNX
 * provider is loaded, timed in interleaved rounds and compared with the CPU reference; a bad format is
 * refused by name.
 */
import assert from "node:assert/strict";
import { LLAMA, runCli } from "./support/cli.ts";

Deno.test("tools/bench_onnx.ts: a --weights list in interleaved --rounds, each against the CPU reference", async () => {
  const r = await runCli("tools/bench_onnx.ts", [
    "--dir",
    LLAMA,
    "--providers",
    "onnx-node,cpu",
    "--weights",
    "fp32,q4g128",
    "--rounds",
    "2",
    "--tokens",
    "4",
    "--prompt",
    "4",
    "--threads",
    "1",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /median of 2 interleaved rounds/);
  for (const weights of ["fp32", "q4g128"]) {
    assert.match(
      r.stdout,
      new RegExp(
        `onnx-node ${weights} +prefill +[\\d.]+ ms +decode +[\\d.]+ tok/s \\([\\d.]+-[\\d.]+\\) +[\\d.]+x the CPU`,
      ),
    );
  }
  assert.match(r.stdout, /^cpu +prefill +[\d.]+ ms +decode +[\d.]+ tok\/s/m);
});

Deno.test("tools/bench_onnx.ts: an unknown --weights format is refused by name", async () => {
  const r = await runCli("tools/bench_onnx.ts", ["--dir", LLAMA, "--providers", "cpu", "--weights", "int3"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--weights must be one of fp32, fp16, q4, q8, q4g128, q8g128, q4g128h4; got 'int3'/);
});
