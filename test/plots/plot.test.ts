import assert from "node:assert/strict";
import { test } from "node:test";
import { manifoldGrid } from "../../src/vae/latent";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  drawnByPagePlotly,
  gridTicks,
  latentScatterFigure,
  lossCurvesFigure,
  manifoldFigure,
  normalSamplesFigure,
  PAGE_TRACE_TYPES,
  pagePlotlySource,
  plotlySource,
  plotlyVersion,
} from "../../src/plots/plot";
import { findChromium, launchChromium } from "../../src/plots/browser";

test("the encoder scatter: one point per digit, coloured by label, colour bar, the tutorial's title", () => {
  const figure = latentScatterFigure(Float32Array.from([0.5, -1, 2, 3]), [7, 2], 0.02);
  const [trace] = figure.data as { x: number[]; y: number[]; marker: { color: number[]; showscale: boolean } }[];
  assert.deepEqual(
    [trace.x, trace.y, trace.marker.color],
    [
      [0.5, 2],
      [-1, 3],
      [7, 2],
    ],
  );
  assert.equal(trace.marker.showscale, true);
  assert.deepEqual((figure.layout.title as { text: string }).text, "Encoder output for KL coefficient = 0.02");
  assert.deepEqual(
    [
      (figure.layout.xaxis as { title: { text: string } }).title.text,
      (figure.layout.yaxis as { title: { text: string } }).title.text,
    ],
    ["z[0]", "z[1]"],
  );
});

test("manifold ticks sit at digit centres, labelled like np.round(grid, 1), +3 at the top", () => {
  const { gridX, gridY } = manifoldGrid(30, 3);
  const x = gridTicks(gridX);
  assert.deepEqual(x.tickvals.slice(0, 3), [14, 42, 70]);
  assert.equal(x.tickvals[29], 14 + 29 * 28);
  // grid_x[1] = -3 + 6/29 = -2.7931 -> -2.8; grid_x[14] = -3 + 84/29 = -0.1034 -> -0.1.
  assert.deepEqual([x.ticktext[0], x.ticktext[1], x.ticktext[14], x.ticktext[29]], ["-3.0", "-2.8", "-0.1", "3.0"]);
  assert.equal(gridTicks(gridY).ticktext[0], "3.0");
  const figure = manifoldFigure(new Float32Array(900 * 784).fill(0.5), gridX, gridY, 1);
  assert.equal((figure.layout.title as { text: string }).text, "Decoder output for KL coefficient = 1");
  const [image] = figure.data as { type: string; source: string }[];
  assert.equal(image.type, "image");
  assert.match(image.source, /^data:image\/png;base64,iVBORw0KGgo/);
  assert.deepEqual((figure.layout.yaxis as { range: number[] }).range, [840, 0], "row 0 (z[1] = +3) on top");
});

test("the normal-samples and loss-curve figures carry their data", () => {
  const normal = normalSamplesFigure(Float32Array.from([1, 2, 3, 4, 5, 6]));
  assert.equal((normal.data[0] as { x: number[] }).x.length, 3);
  const history = [1, 2].map((epoch) => ({
    epoch,
    seconds: 1,
    train: { reconstruction: 200 - epoch, kl: 5, total: 205 - epoch },
    test: { reconstruction: 201 - epoch, kl: 4, total: 205 - epoch },
  }));
  const curves = lossCurvesFigure(history, 1);
  assert.equal(curves.data.length, 6);
  assert.deepEqual((curves.data[0] as { y: number[] }).y, [204, 203]);
});

test("plotly.js is read from the plotly.js-dist package, minified once and cached", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-plotly-"));
  const source = plotlySource(dir);
  assert.match(source.slice(0, 2000), /plotly\.js v4\./, "the license header is kept");
  assert.ok(source.length < 6e6, `minified to ${source.length} characters`);
  assert.deepEqual(fs.readdirSync(dir), [`plotly-${plotlyVersion()}.min.js`]);
  assert.equal(plotlySource(dir), source);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("the pages' plotly.js bundle registers every trace type the pages draw, and no table", async (t) => {
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ content: pagePlotlySource() });
    const registered = await page.evaluate(() =>
      Object.keys(
        (globalThis as unknown as { Plotly: { PlotSchema: { get(): { traces: object } } } }).Plotly.PlotSchema.get()
          .traces,
      ),
    );
    assert.deepEqual(
      PAGE_TRACE_TYPES.filter((type) => !registered.includes(type)),
      [],
    );
    assert.ok(!registered.includes("table"), "tables are drawn as HTML tables");
    assert.ok(drawnByPagePlotly({ data: [{ type: "scatter" }, { type: "image" }], layout: {} }));
    assert.ok(!drawnByPagePlotly({ data: [{ type: "table" }], layout: {} }));
  } finally {
    await browser.close();
  }
});
