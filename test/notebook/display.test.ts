import assert from "node:assert/strict";
import { test } from "node:test";
import { displayBundle, figureHtml, lossSparkline } from "../../src/notebook/display";
import { encodeGreyPng } from "../../src/plots/png";

test("a figure's HTML shows the PNG first and swaps in the interactive chart where scripts run", () => {
  const png = encodeGreyPng(1, 1, Uint8Array.from([7]));
  const html = figureHtml({ data: [{ type: "scatter", x: [1], y: [2] }], layout: { title: { text: "A </script> title" }, width: 300, height: 200 } }, png);
  assert.match(html, new RegExp(`<img alt="A &lt;/script&gt; title" src="data:image/png;base64,${Buffer.from(png).toString("base64")}"`));
  assert.match(html, /window\.Plotly\.newPlot\(el, spec\.data, spec\.layout/);
  assert.equal(html.match(/<\/script>/g)?.length, 1, "the title cannot close the script early");
  assert.match(figureHtml({ data: [], layout: {} }), /no static image/);
});

test("displaying outside a tslab kernel fails with a clear message", () => {
  assert.throws(() => displayBundle({ "text/plain": "x" }), /needs a running tslab kernel cell|needs the tslab kernel/);
});

test("the loss sparkline has one vertex per epoch for train and test", () => {
  const history = [1, 2, 3].map((epoch) => ({ epoch, seconds: 1, train: { reconstruction: 1, kl: 1, total: 10 - epoch }, test: { reconstruction: 1, kl: 1, total: 11 - epoch } }));
  const svg = lossSparkline(history);
  const polylines = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1].split(" ").length);
  assert.deepEqual(polylines, [3, 3]);
});
