import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import { SaxesParser } from "npm:saxes@6.0.0";
import { escapeXml, heatmapSvg, histogramSvg, integerBins, niceStep, viridis } from "../cli/svg.ts";

/** A parsed element: enough of a DOM to query the charts. */
interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

/** Parses with saxes, a strict XML 1.0 well-formedness checker (throws on any error), into an El tree. */
function parse(svg: string): El {
  const parser = new SaxesParser({ xmlns: true });
  const stack: El[] = [{ name: "#document", attrs: {}, children: [], text: "" }];
  parser.on("error", (e) => {
    throw e;
  });
  parser.on("opentag", (tag) => {
    const attrs: Record<string, string> = {};
    for (const [k, a] of Object.entries(tag.attributes)) attrs[k] = typeof a === "string" ? a : a.value;
    const el: El = { name: tag.name, attrs, children: [], text: "" };
    stack.at(-1)!.children.push(el);
    stack.push(el);
  });
  parser.on("text", (t) => void (stack.at(-1)!.text += t));
  parser.on("closetag", () => void stack.pop());
  parser.write(svg).close();
  const root = stack[0].children[0];
  assert.equal(root.name, "svg");
  assert.equal(root.attrs.xmlns, "http://www.w3.org/2000/svg");
  return root;
}

function all(root: El, name: string): El[] {
  const out: El[] = [];
  const walk = (e: El) => e.children.forEach((c) => (c.name === name && out.push(c), walk(c)));
  walk(root);
  return out;
}

function texts(root: El): string[] {
  return all(root, "text").map((t) => t.text);
}

function byClass(root: El, cls: string): El {
  const g = all(root, "g").find((e) => e.attrs.class === cls);
  assert.ok(g, `no <g class="${cls}">`);
  return g;
}

Deno.test("heatmap: valid SVG with every cell value, axis labels, ticks and a colour scale", () => {
  const values = [
    [1.5, 1.8, 2.1],
    [1.6, null, 2.4],
  ];
  const svg = heatmapSvg({
    title: "Speedup <greedy & beam>",
    xLabel: "beam width",
    yLabel: "beam length",
    xTicks: [1, 2, 4],
    yTicks: [3, 5],
    values,
    format: (v) => `${v.toFixed(2)}x`,
    colorLabel: "speedup",
  });
  const root = parse(svg);
  const words = texts(root);
  for (
    const s of ["1.50x", "1.80x", "2.10x", "1.60x", "2.40x", "–", "beam width", "beam length", "speedup"]
  ) {
    assert.ok(words.includes(s), `missing text ${s}`);
  }
  assert.ok(words.includes("Speedup <greedy & beam>")); // escaped in the source, intact once parsed
  assert.ok(svg.includes("Speedup &lt;greedy &amp; beam&gt;"));
  for (const t of ["1", "2", "4", "3", "5"]) assert.ok(words.includes(t), `missing tick ${t}`);

  // Cells: 6 rects, min value darkest (viridis start), max brightest (viridis end), missing grey.
  const cells = all(byClass(root, "cells"), "rect");
  assert.equal(cells.length, 6);
  const cellTexts = all(byClass(root, "cells"), "text");
  const fill = (label: string) => cells[cellTexts.findIndex((e) => e.text === label)].attrs.fill;
  assert.equal(fill("1.50x"), "#440154");
  assert.equal(fill("2.40x"), "#fde725");
  assert.equal(fill("–"), "#e0e0e0");
  // Row 0 (beam length 3) is drawn below row 1 (beam length 5).
  const yOf = (label: string) => Number(all(root, "text").find((e) => e.text === label)!.attrs.y);
  assert.ok(yOf("1.50x") > yOf("1.60x"));
  // The colour bar is labelled with the domain's ends.
  assert.ok(words.includes("1.50x") && words.filter((s) => s === "2.40x").length === 2);
  assert.equal(all(root, "linearGradient").length, 1);
});

Deno.test("the XML check itself rejects unescaped text and unclosed tags", () => {
  const open = `<svg xmlns="http://www.w3.org/2000/svg">`;
  assert.throws(() => parse(`${open}<text>a & b</text></svg>`));
  assert.throws(() => parse(`${open}<text>a</svg>`));
  assert.throws(() => parse(`<svg xmlns="http://www.w3.org/2000/svg"><rect x="1" x="2"/></svg>`));
  assert.equal(texts(parse(`${open}<text>a &amp; b</text></svg>`))[0], "a & b");
});

Deno.test("heatmap refuses values that do not match the ticks", () => {
  const base = { xLabel: "x", yLabel: "y", xTicks: [1, 2], yTicks: [1] };
  assert.throws(() => heatmapSvg({ ...base, values: [[1, 2], [3, 4]] }), /values has 2 rows, yTicks has 1/);
  assert.throws(() => heatmapSvg({ ...base, values: [[1]] }), /values\[0\] has 1 cells, xTicks has 2/);
  assert.throws(() => heatmapSvg({ ...base, xTicks: [], values: [[]] }), /at least one x tick/);
  // All equal or all missing still draws.
  parse(heatmapSvg({ ...base, values: [[2, 2]] }));
  parse(heatmapSvg({ ...base, values: [[null, NaN]] }));
});

Deno.test("histogram: valid SVG with a bar and count per bin, nice y ticks", () => {
  const bins = integerBins([1, 1, 2, 3, 3, 3, 5], 0, 5);
  assert.deepEqual(bins.map((b) => b.count), [0, 2, 1, 3, 0, 1]);
  const root = parse(histogramSvg({ title: "Accepted tokens per step", xLabel: "tokens accepted", bins }));
  const bars = byClass(root, "bars");
  const rects = all(bars, "rect");
  assert.equal(rects.length, 6);
  // Bar heights are proportional to counts.
  const h = rects.map((r) => Number(r.attrs.height));
  assert.equal(h[0], 0);
  assert.ok(Math.abs(h[3] / h[1] - 1.5) < 1e-6);
  const barTexts = all(bars, "text").map((t) => t.text);
  assert.deepEqual(barTexts, ["0", "0", "2", "1", "1", "2", "3", "3", "0", "4", "1", "5"]); // count, label per bin
  const words = texts(root);
  assert.ok(
    words.includes("tokens accepted") && words.includes("count") &&
      words.includes("Accepted tokens per step"),
  );
});

Deno.test("histogram and bin helpers reject bad input", () => {
  assert.throws(() => histogramSvg({ xLabel: "x", bins: [] }), /no bins/);
  assert.throws(() => histogramSvg({ xLabel: "x", bins: [{ label: 1, count: -1 }] }), /bin 1 has count -1/);
  assert.throws(() => integerBins([1.5]), /not an integer/);
  assert.throws(() => integerBins([9], 0, 5), /outside 0\.\.5/);
  assert.deepEqual(integerBins([]), [{ label: 0, count: 0 }]);
  assert.deepEqual([niceStep(3), niceStep(12), niceStep(80), niceStep(0)], [1, 5, 20, 1]);
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.equal(escapeXml(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
});
