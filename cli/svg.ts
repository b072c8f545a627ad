/**
 * Standalone SVG charts for bench reports: pure functions from numbers to an SVG document string (no DOM,
 * no fonts embedded; text uses the viewer's sans-serif).
 *
 * - heatmapSvg: a grid of coloured cells with their values, e.g. speedup over beam width (x) by beam
 *   length (y), with a colour bar.
 * - histogramSvg: bars with counts, e.g. how many tokens each verification step accepted.
 *
 * Intended use in bench:
 *
 * ```ts
 * import { heatmapSvg, histogramSvg, integerBins } from "./svg.ts";
 * await Deno.writeTextFile("bench-out/speedup.svg", heatmapSvg({
 *   title: "Speedup over greedy decoding", xLabel: "beam width", yLabel: "beam length",
 *   xTicks: widths, yTicks: lengths, values: speedup, format: (v) => `${v.toFixed(2)}x`, colorLabel: "speedup",
 * }));
 * await Deno.writeTextFile("bench-out/accepted.svg", histogramSvg({
 *   title: "Accepted tokens per step", xLabel: "tokens accepted", bins: integerBins(acceptedLengths, 0, beamLength),
 * }));
 * ```
 *
 * @module
 */

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(
    /'/g,
    "&apos;",
  );
}

// Viridis, sampled at 9 points (matplotlib's), interpolated linearly in RGB.
const VIRIDIS: [number, number, number][] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Colour for t in [0, 1] on the viridis scale, as [r, g, b]. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

const hex = ([r, g, b]: [number, number, number]) =>
  "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");

/** Black or white, whichever reads better on the background colour. */
function textOn([r, g, b]: [number, number, number]): string {
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
}

/** Rounds to 4 significant digits for coordinates, to keep the SVG small. */
const n = (x: number) => String(Math.round(x * 100) / 100);

function defaultFormat(v: number): string {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs ? " " + attrs : ""}>${escapeXml(s)}</text>`;
}

/** Width a centred bold 15 px title needs, with a margin on each side. */
function titleWidth(title: string | undefined): number {
  return title ? Math.ceil(title.length * 8.5) + 24 : 0;
}

function document(width: number, height: number, body: string[], title?: string): string {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" ` +
    `viewBox="0 0 ${n(width)} ${
      n(height)
    }" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    title ? `<title>${escapeXml(title)}</title>` : "",
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...body,
    `</svg>`,
    "",
  ].filter((l) => l !== "").join("\n");
}

// ---------------------------------------------------------------------------------------------------------
// Heatmap

export interface HeatmapSpec {
  title?: string;
  xLabel: string;
  yLabel: string;
  /** Column labels, left to right. */
  xTicks: (string | number)[];
  /** Row labels; row 0 is drawn at the bottom, as on a y axis. */
  yTicks: (string | number)[];
  /** values[row][col]; null or NaN for a cell not measured (drawn grey). */
  values: (number | null)[][];
  /** Cell text; default 2 decimals for fractions. */
  format?: (v: number) => string;
  /** Caption of the colour bar. */
  colorLabel?: string;
  /** Colour-scale range; default the values' min..max. */
  domain?: [number, number];
}

function checkHeatmap(spec: HeatmapSpec): void {
  const rows = spec.yTicks.length, cols = spec.xTicks.length;
  if (rows === 0 || cols === 0) throw new Error("heatmapSvg: needs at least one x tick and one y tick");
  if (spec.values.length !== rows) {
    throw new Error(`heatmapSvg: values has ${spec.values.length} rows, yTicks has ${rows}`);
  }
  spec.values.forEach((row, i) => {
    if (row.length !== cols) {
      throw new Error(`heatmapSvg: values[${i}] has ${row.length} cells, xTicks has ${cols}`);
    }
  });
}

/** A heatmap as a standalone SVG document. Throws when values do not match the ticks. */
export function heatmapSvg(spec: HeatmapSpec): string {
  checkHeatmap(spec);
  const fmt = spec.format ?? defaultFormat;
  const rows = spec.yTicks.length, cols = spec.xTicks.length;
  const finite = spec.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  let [lo, hi] = spec.domain ?? [Math.min(...finite), Math.max(...finite)];
  if (finite.length === 0 && !spec.domain) [lo, hi] = [0, 1];
  const scale = (v: number) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);

  const longest = Math.max(
    ...spec.values.flat().map((v) => (v === null || !Number.isFinite(v) ? 1 : fmt(v).length)),
  );
  const cellW = Math.max(48, longest * 8 + 16), cellH = 36;
  const yTickW = Math.max(...spec.yTicks.map((t) => String(t).length)) * 7.5 + 10;
  const left = 30 + yTickW, top = spec.title ? 44 : 16, bottom = 56;
  const gridW = cols * cellW, gridH = rows * cellH;
  const barX = left + gridW + 24, barW = 14;
  // Wide enough for the title too (bold 15 px: about 8.5 px per character).
  const width = Math.max(barX + barW + 60 + (spec.colorLabel ? 18 : 0), titleWidth(spec.title));
  const height = top + gridH + bottom;

  const body: string[] = [];
  if (spec.title) {
    body.push(text(width / 2, 26, spec.title, `text-anchor="middle" font-size="15" font-weight="bold"`));
  }
  body.push(`<g class="cells">`);
  for (let i = 0; i < rows; i++) {
    const y = top + (rows - 1 - i) * cellH;
    for (let j = 0; j < cols; j++) {
      const x = left + j * cellW;
      const v = spec.values[i][j];
      const missing = v === null || !Number.isFinite(v);
      const color = missing ? [224, 224, 224] as [number, number, number] : viridis(scale(v));
      body.push(
        `<rect x="${n(x)}" y="${n(y)}" width="${cellW}" height="${cellH}" fill="${
          hex(color)
        }" stroke="#fff"/>`,
        text(
          x + cellW / 2,
          y + cellH / 2 + 4,
          missing ? "–" : fmt(v),
          `text-anchor="middle" fill="${textOn(color)}"`,
        ),
      );
    }
  }
  body.push(`</g>`);

  // Axes: tick labels beside the grid, axis titles centred on it.
  for (let j = 0; j < cols; j++) {
    body.push(
      text(left + (j + 0.5) * cellW, top + gridH + 16, String(spec.xTicks[j]), `text-anchor="middle"`),
    );
  }
  for (let i = 0; i < rows; i++) {
    const y = top + (rows - 1 - i + 0.5) * cellH + 4;
    body.push(text(left - 8, y, String(spec.yTicks[i]), `text-anchor="end"`));
  }
  body.push(text(left + gridW / 2, top + gridH + 40, spec.xLabel, `text-anchor="middle" font-size="13"`));
  const yMid = top + gridH / 2;
  body.push(
    text(14, yMid, spec.yLabel, `text-anchor="middle" font-size="13" transform="rotate(-90 14 ${n(yMid)})"`),
  );

  // Colour bar: a vertical gradient with the domain's ends and middle labelled.
  body.push(
    `<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">`,
    ...VIRIDIS.map((c, k) => `<stop offset="${n(k / (VIRIDIS.length - 1))}" stop-color="${hex(c)}"/>`),
    `</linearGradient></defs>`,
    `<rect x="${n(barX)}" y="${n(top)}" width="${barW}" height="${
      n(gridH)
    }" fill="url(#scale)" stroke="#999"/>`,
  );
  for (const [t, v] of [[0, lo], [0.5, (lo + hi) / 2], [1, hi]]) {
    const y = top + gridH * (1 - t);
    body.push(
      `<line x1="${n(barX + barW)}" y1="${n(y)}" x2="${n(barX + barW + 4)}" y2="${n(y)}" stroke="#333"/>`,
      text(barX + barW + 7, y + 4, fmt(v)),
    );
  }
  if (spec.colorLabel) {
    const x = width - 8;
    body.push(
      text(x, yMid, spec.colorLabel, `text-anchor="middle" transform="rotate(-90 ${n(x)} ${n(yMid)})"`),
    );
  }
  return document(width, height, body, spec.title);
}

// ---------------------------------------------------------------------------------------------------------
// Histogram

export interface Bin {
  label: string | number;
  count: number;
}

export interface HistogramSpec {
  title?: string;
  xLabel: string;
  /** Default "count". */
  yLabel?: string;
  bins: Bin[];
  /** Bar colour; default a viridis blue. */
  color?: string;
}

/** Counts of each integer from min to max (defaults: the samples' range); non-integers are refused. */
export function integerBins(samples: ArrayLike<number>, min?: number, max?: number): Bin[] {
  const values = Array.from(samples);
  for (const v of values) {
    if (!Number.isInteger(v)) throw new Error(`integerBins: sample ${v} is not an integer`);
  }
  const lo = min ?? (values.length ? Math.min(...values) : 0);
  const hi = max ?? (values.length ? Math.max(...values) : 0);
  if (hi < lo) throw new Error(`integerBins: max ${hi} is below min ${lo}`);
  const counts = new Array(hi - lo + 1).fill(0);
  for (const v of values) {
    if (v < lo || v > hi) throw new Error(`integerBins: sample ${v} is outside ${lo}..${hi}`);
    counts[v - lo]++;
  }
  return counts.map((count, k) => ({ label: lo + k, count }));
}

/** A "nice" step (1, 2 or 5 times a power of ten) giving about `target` ticks up to max. */
export function niceStep(max: number, target = 5): number {
  if (max <= 0) return 1;
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  return Math.max(step, 1); // counts are integers
}

/** A histogram as a standalone SVG document. */
export function histogramSvg(spec: HistogramSpec): string {
  if (spec.bins.length === 0) throw new Error("histogramSvg: no bins");
  for (const b of spec.bins) {
    if (!Number.isFinite(b.count) || b.count < 0) {
      throw new Error(`histogramSvg: bin ${b.label} has count ${b.count}; counts must be finite and >= 0`);
    }
  }
  const maxCount = Math.max(...spec.bins.map((b) => b.count));
  const step = niceStep(maxCount);
  const yMax = Math.max(step, Math.ceil(maxCount / step) * step);
  const left = 40 + String(yMax).length * 7, top = spec.title ? 48 : 20, bottom = 56, right = 20;
  const barSlot = Math.max(28, Math.min(64, 480 / spec.bins.length));
  const plotW = barSlot * spec.bins.length, plotH = 240;
  const width = Math.max(left + plotW + right, titleWidth(spec.title)), height = top + plotH + bottom;
  const y = (c: number) => top + plotH * (1 - c / yMax);
  const color = spec.color ?? hex(viridis(0.35));

  const body: string[] = [];
  if (spec.title) {
    body.push(text(width / 2, 28, spec.title, `text-anchor="middle" font-size="15" font-weight="bold"`));
  }
  for (let c = 0; c <= yMax; c += step) {
    body.push(
      `<line x1="${n(left)}" y1="${n(y(c))}" x2="${n(left + plotW)}" y2="${n(y(c))}" stroke="${
        c ? "#e5e5e5" : "#333"
      }"/>`,
      text(left - 6, y(c) + 4, String(c), `text-anchor="end"`),
    );
  }
  body.push(`<g class="bars">`);
  spec.bins.forEach((b, k) => {
    const x = left + k * barSlot;
    const h = y(0) - y(b.count);
    body.push(
      `<rect x="${n(x + barSlot * 0.1)}" y="${n(y(b.count))}" width="${n(barSlot * 0.8)}" height="${
        n(h)
      }" fill="${color}"/>`,
      text(x + barSlot / 2, y(b.count) - 4, String(b.count), `text-anchor="middle" font-size="11"`),
      text(x + barSlot / 2, top + plotH + 16, String(b.label), `text-anchor="middle"`),
    );
  });
  body.push(`</g>`);
  body.push(text(left + plotW / 2, top + plotH + 40, spec.xLabel, `text-anchor="middle" font-size="13"`));
  const yMid = top + plotH / 2;
  body.push(
    text(
      14,
      yMid,
      spec.yLabel ?? "count",
      `text-anchor="middle" font-size="13" transform="rotate(-90 14 ${n(yMid)})"`,
    ),
  );
  return document(width, height, body, spec.title);
}
