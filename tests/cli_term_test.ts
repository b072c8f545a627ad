import assert from "node:assert/strict";
import {
  colors,
  formatBytes,
  formatDuration,
  progressBar,
  renderTable,
  type Sink,
  stripAnsi,
  visibleLength,
} from "../cli/term.ts";

function fakeSink(isTTY: boolean, columns = 100): Sink & { out: string[] } {
  const out: string[] = [];
  return { out, isTTY, columns, write: (t) => void out.push(t) };
}

Deno.test("colors: ANSI only when enabled; --no-color and non-TTY turn it off", () => {
  const on = colors({ enabled: true });
  assert.equal(on.red("x"), "\x1b[31mx\x1b[39m");
  assert.equal(visibleLength(on.bold(on.green("abc"))), 3);
  const off = colors({ enabled: false });
  assert.equal(off.red("x"), "x");
  assert.equal(colors({ noColor: true, isTTY: true }).enabled, false);
  assert.equal(colors({ isTTY: false }).enabled, false);
});

Deno.test("colors honour NO_COLOR in a child process with a TTY claim", async () => {
  const mod = new URL("../cli/term.ts", import.meta.url).href;
  const code = `import { colors } from "${mod}"; console.log(colors({ isTTY: true }).enabled);`;
  const run = async (env: Record<string, string>) =>
    new TextDecoder().decode(
      (await new Deno.Command(Deno.execPath(), { args: ["eval", code], env }).output()).stdout,
    )
      .trim();
  assert.equal(await run({ NO_COLOR: "1" }), "false");
  assert.equal(await run({ NO_COLOR: "" }), "true"); // empty NO_COLOR does not count (no-color.org)
});

Deno.test("formatBytes / formatDuration", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  assert.equal(formatBytes(500 * 1024 ** 2), "500 MiB");
  assert.equal(formatDuration(45), "45s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(3720), "1h02m");
  assert.equal(formatDuration(Infinity), "?");
});

Deno.test("progressBar on a non-TTY writes at most one plain line per 10% plus the last", () => {
  const sink = fakeSink(false);
  let t = 0;
  const bar = progressBar({ label: "prompts", total: 80, sink, now: () => t });
  for (let i = 0; i < 80; i++) {
    t += 500;
    bar.tick();
  }
  bar.finish();
  bar.finish(); // idempotent
  assert.equal(sink.out.length, 10); // 10%..90% and the final line
  assert.ok(sink.out.every((l) => l.endsWith("\n") && !l.includes("\r") && !l.includes("\x1b")));
  assert.match(sink.out[0], /^prompts: 10% 8\/80 /);
  assert.match(sink.out[9], /^prompts: 100% 80\/80 2\.0\/s eta 0s\n$/);
});

Deno.test("progressBar on a TTY redraws one line, throttled, with a bar and byte units", () => {
  const sink = fakeSink(true, 100);
  let t = 0;
  const total = 10 * 1024 * 1024;
  const bar = progressBar({
    label: "model.safetensors",
    total,
    unit: "bytes",
    initial: total / 2,
    sink,
    now: () => t,
  });
  const first = sink.out.length; // drawn once at the start
  assert.equal(first, 1);
  for (let i = 1; i <= 50; i++) {
    t += 10; // 50 updates over 0.5 s -> ~5 redraws at 100 ms
    bar.update(total / 2 + (i * total) / 100);
  }
  bar.finish();
  const redraws = sink.out.filter((s) => s.startsWith("\r\x1b[2K")).length;
  assert.ok(redraws >= 5 && redraws <= 8, `redraws: ${redraws}`);
  assert.equal(sink.out.at(-1), "\n");
  const last = sink.out.at(-2)!;
  assert.match(last, /model\.safetensors \[#{10,40}\] 100% 10\.0 MiB\/10\.0 MiB /);
  // rate counts only this run's bytes: 5 MiB in 0.5 s
  assert.match(last, /10\.0 MiB\/s/);
  assert.ok(visibleLength(last.replace("\r", "")) <= 100);
});

Deno.test("progressBar with unknown total shows amount and rate only", () => {
  const sink = fakeSink(false);
  let t = 0;
  const bar = progressBar({ label: "x", total: null, unit: "bytes", sink, now: () => t });
  t = 40_000;
  bar.update(2048); // after 30 s a plain line
  t = 41_000;
  bar.update(4096); // too soon for another
  bar.finish();
  assert.equal(sink.out.length, 2);
  assert.match(sink.out[1], /^x: 4\.0 KiB /);
});

Deno.test("renderTable aligns columns: numbers right, text left, ANSI ignored", () => {
  const c = colors({ enabled: true });
  const table = renderTable(
    ["metric", "value", "note"],
    [
      ["tokens/s", 41.2, "cpu"],
      ["speedup", 2.3125, c.green("good")],
      ["accepted length", 3, null],
    ],
    { digits: 2 },
  );
  const counts = renderTable(["n", "x"], [[1, 1], [1000, 2.5]]);
  assert.deepEqual(counts.split("\n").slice(2), ["   1  1.000", "1000  2.500"]);
  const lines = table.split("\n").map((l) => stripAnsi(l));
  assert.deepEqual(lines, [
    "metric           value  note",
    "---------------  -----  ----",
    "tokens/s         41.20  cpu",
    "speedup           2.31  good",
    "accepted length   3.00  -",
  ]);
  assert.throws(() => renderTable(["a", "b"], [["x"]]), /row 0 has 1 cells, header has 2/);
});
