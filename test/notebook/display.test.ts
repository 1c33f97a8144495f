import assert from "node:assert/strict";
import { test } from "node:test";
import { displayBundle, figureHtml, lossSparkline, PLOTLY_SERVER_PATHS } from "../../src/notebook/display";
import * as fs from "node:fs";
import { inspect } from "node:util";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../src/vae/data";
import { pagePlotlyFile } from "../../src/plots/plot";
import { encodeGreyPng } from "../../src/plots/png";

test("a figure's HTML shows the static image first and swaps in the interactive chart where scripts run", () => {
  const png = encodeGreyPng(1, 1, Uint8Array.from([7]));
  const html = figureHtml(
    {
      data: [{ type: "scatter", x: [1], y: [2] }],
      layout: { title: { text: "A </script> title" }, width: 300, height: 200 },
    },
    { bytes: png, mimeType: "image/png" },
  );
  assert.match(
    html,
    new RegExp(`<img alt="A &lt;/script&gt; title" src="data:image/png;base64,${Buffer.from(png).toString("base64")}"`),
  );
  assert.match(html, /window\.Plotly\.newPlot\(el, spec\.data, spec\.layout/);
  assert.equal(html.match(/<\/script>/g)?.length, 1, "the title cannot close the script early");
  assert.match(figureHtml({ data: [], layout: {} }), /no static image/);
  // plotly.js itself is not in the output: the page loads it from the Jupyter server.
  assert.ok(html.length < 5000, `${html.length} characters`);
});

test("a table figure becomes an HTML table (header, then one row per cell index), and an undrawable trace is refused", () => {
  const table = figureHtml({
    data: [
      {
        type: "table",
        header: { values: ["c", "rate"] },
        cells: {
          values: [
            ["0", "0.5"],
            ["204.58", "<6.54>"],
          ],
        },
      },
    ],
    layout: { title: { text: "Metrics" } },
  });
  assert.match(table, /<b>Metrics<\/b>/);
  assert.match(
    table,
    /<thead><tr><th>c<\/th><th>rate<\/th><\/tr><\/thead><tbody><tr><td[^>]*>0<\/td><td[^>]*>204\.58<\/td><\/tr><tr><td[^>]*>0\.5<\/td><td[^>]*>&lt;6\.54&gt;<\/td><\/tr><\/tbody>/,
  );
  assert.doesNotMatch(table, /<script/);
  assert.throws(
    () => figureHtml({ data: [{ type: "scatter3d" }], layout: { title: { text: "3D" } } }),
    /3D: a trace type the pages' plotly\.js bundle does not draw \(scatter3d\)/,
  );
});

test("the plotly.js that the Jupyter server serves from jupyter/nbextensions is the pages' bundle", () => {
  const served = path.join(PROJECT_ROOT, "jupyter", PLOTLY_SERVER_PATHS[0]);
  assert.equal(fs.realpathSync(served), fs.realpathSync(pagePlotlyFile()));
  assert.equal(
    fs.realpathSync(path.join(PROJECT_ROOT, PLOTLY_SERVER_PATHS[1].replace(/^files\//, ""))),
    fs.realpathSync(pagePlotlyFile()),
  );
});

test("displaying outside a tslab kernel fails with a clear message", () => {
  assert.throws(() => displayBundle({ "text/plain": "x" }), /needs a running tslab kernel cell|needs the tslab kernel/);
});

test("the loss sparkline has one vertex per epoch for train and test", () => {
  const history = [1, 2, 3].map((epoch) => ({
    epoch,
    seconds: 1,
    train: { reconstruction: 1, kl: 1, total: 10 - epoch },
    test: { reconstruction: 1, kl: 1, total: 11 - epoch },
  }));
  const svg = lossSparkline(history);
  const polylines = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1].split(" ").length);
  assert.deepEqual(polylines, [3, 3]);
});

test("Interrupt during a sweep is a request polled between batches; tslab's handler comes back afterwards", async () => {
  const { withCooperativeInterrupt, SweepInterruptedError } = await import("../../src/notebook/display");
  let hardInterrupts = 0;
  const tslabHandler = () => hardInterrupts++;
  process.on("SIGINT", tslabHandler);
  try {
    const seen = await withCooperativeInterrupt(async (stopRequested) => {
      const before = stopRequested();
      process.kill(process.pid, "SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 200));
      const afterFirst = stopRequested();
      const hardBefore = hardInterrupts;
      process.kill(process.pid, "SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { before, afterFirst, hardBefore, hardAfter: hardInterrupts };
    });
    // The first Interrupt only sets the request; the second reaches tslab's own handler.
    assert.deepEqual(seen, { before: false, afterFirst: true, hardBefore: 0, hardAfter: 1 });
    assert.deepEqual(process.listeners("SIGINT"), [tslabHandler]);
  } finally {
    process.removeListener("SIGINT", tslabHandler);
  }
  const error = new SweepInterruptedError(0.5, 1, [0, 0.02, 0.1]);
  assert.equal(
    error.stack,
    "Interrupted: KL coefficient 0.5 at epoch 1 was not cached; c = 0, 0.02, 0.1 are cached and the next run resumes from them.",
  );
  // What tslab prints for a failed cell (console.error of the error): that line alone.
  assert.equal(inspect(error), error.stack);
  assert.equal(
    new SweepInterruptedError(0, 2, []).stack,
    "Interrupted: KL coefficient 0 at epoch 2 was not cached; nothing was cached yet.",
  );
  assert.equal(
    new SweepInterruptedError(0.02, undefined, [0]).stack,
    "Interrupted: before KL coefficient 0.02 started; c = 0 is cached and the next run resumes from them.",
  );
});

test("a figure's bundle holds its HTML, plotly's JSON (data, layout, config) and its title, and nothing else", async () => {
  const { figureBundle, PLOTLY_MIME_TYPE } = await import("../../src/notebook/display");
  const figure = {
    data: [{ type: "scatter", x: [1, 2], y: [3, 4], mode: "markers" }],
    layout: { title: { text: "Encoder output for KL coefficient = 1" }, width: 300, height: 200 },
  };
  const bundle = figureBundle(figure);
  assert.equal(PLOTLY_MIME_TYPE, "application/vnd.plotly.v1+json");
  assert.deepEqual(Object.keys(bundle).sort(), ["application/vnd.plotly.v1+json", "text/html", "text/plain"]);
  assert.deepEqual(bundle["application/vnd.plotly.v1+json"], {
    data: [{ type: "scatter", x: [1, 2], y: [3, 4], mode: "markers" }],
    layout: { title: { text: "Encoder output for KL coefficient = 1" }, width: 300, height: 200 },
    config: { displaylogo: false },
  });
  assert.equal(bundle["text/plain"], "Encoder output for KL coefficient = 1");
  assert.match(String(bundle["text/html"]), /window\.Plotly\.newPlot/);
  const frames = [{ name: "f1", data: [{ y: [5, 6] }] }];
  assert.deepEqual(
    (figureBundle({ ...figure, frames }) as Record<string, { frames?: unknown }>)["application/vnd.plotly.v1+json"]
      .frames,
    frames,
  );
});

test("the live progress draws one left-aligned, wrapping block per coefficient, not table cells", async () => {
  const { LiveProgress } = await import("../../src/notebook/display");
  const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
  const sent: { data: Record<string, string>; update: boolean }[] = [];
  jupyter.lastWriteDisplayData = (content: { data: Record<string, string> }, update: boolean) =>
    sent.push({ data: content.data, update });
  try {
    const progress = new LiveProgress([0, 0.1, 20], { epochs: 2 });
    progress.runStart({ klCoefficient: 0, index: 0, count: 3, cached: true });
    const html = sent[0].data["text/html"];
    const lines = [...html.matchAll(/<div class="vae-progress-line" style="([^"]*)">([^<]*)<\/div>/g)];
    assert.deepEqual(
      lines.map((m) => m[2]),
      ["c = 0: loaded from the cache", "c = 0.1: waiting", "c = 20: waiting"],
    );
    for (const [, style] of lines) assert.match(style, /white-space:pre-wrap;.*text-align:left/);
    assert.doesNotMatch(html, /<table|<td/);
    assert.equal(
      sent[0].data["text/plain"].split("\n").slice(0, 3).join("\n"),
      "c = 0: loaded from the cache\nc = 0.1: waiting\nc = 20: waiting",
    );
  } finally {
    jupyter.lastWriteDisplayData = null;
  }
});
