/**
 * The project sends a figure's whole MIME bundle through tslab's internal sender (`src/notebook/tslabDisplay.ts`),
 * since tslab's public display API sends one MIME type per output. These tests fail, saying so, when a
 * tslab release changes that sender: its module's shape here, and a bundle sent through a real kernel.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { KernelClient, type Output } from "../../src/notebook/kernel";
import { checkDisplayModule, checkTslabDisplayChannel, TSLAB_VERSION_CHECKED } from "../../src/notebook/tslabDisplay";

const CHANGED =
  /^tslab [\w.-]+ changed the internal display channel that sends a figure's MIME bundle \(.+\); src\/notebook\/tslabDisplay\.ts was written against tslab 1\.0\.22: pin tslab to 1\.0\.22 in package\.json, or adapt that file to the new tslab\.$/;

test("the installed tslab keeps the internal sender this project calls (module, export, arity)", () => {
  assert.equal(TSLAB_VERSION_CHECKED, "1.0.22");
  assert.doesNotThrow(
    () => checkTslabDisplayChannel(),
    "if this fails, read the message: tslab changed its internal display sender",
  );
});

test("a tslab whose module lacks the sender, or holds something else, is named as the cause", () => {
  assert.throws(
    () => checkDisplayModule({}),
    (error: Error) => CHANGED.test(error.message) && /no longer exports lastWriteDisplayData/.test(error.message),
  );
  assert.throws(
    () => checkDisplayModule({ lastWriteDisplayData: "x" }),
    (error: Error) => CHANGED.test(error.message) && /is a string, not a function/.test(error.message),
  );
  assert.throws(
    () => checkDisplayModule({ lastWriteDisplayData: (content: unknown) => content }),
    (error: Error) => CHANGED.test(error.message) && /takes 1 arguments/.test(error.message),
  );
  assert.doesNotThrow(() => checkDisplayModule({ lastWriteDisplayData: null }));
});

let kernel: KernelClient;
before(async () => {
  kernel = await KernelClient.start();
});
after(async () => {
  await kernel?.shutdown();
});

test("through a real tslab kernel, one output carries the whole bundle, and an update replaces it in place", async () => {
  const code = `
import { displayBundle } from "./src/notebook/display";
displayBundle({ "text/html": "<b>one</b>", "application/vnd.plotly.v1+json": { data: [{ type: "scatter", x: [1, 2], y: [3, 4] }], layout: { title: { text: "t" } }, config: { displaylogo: false } }, "text/plain": "one" }, { displayId: "d1" });
displayBundle({ "text/html": "<b>two</b>", "text/plain": "two" }, { displayId: "d1", update: true });
`;
  const result = await kernel.execute(code, 120_000);
  assert.equal(result.status, "ok", result.stderr);
  const displays = result.outputs.filter(
    (o): o is Extract<Output, { output_type: "display_data" }> => o.output_type === "display_data",
  );
  assert.equal(displays.length, 1, "one output, updated in place");
  assert.deepEqual(displays[0].data, { "text/html": "<b>two</b>", "text/plain": "two" });

  const first = await kernel.execute(
    `displayBundle({ "text/html": "<i>h</i>", "application/vnd.plotly.v1+json": { data: [], layout: { width: 300 } }, "text/plain": "p" });`,
    60_000,
  );
  assert.equal(first.status, "ok", first.stderr);
  const [output] = first.outputs;
  assert.deepEqual(output, {
    output_type: "display_data",
    data: {
      "text/html": "<i>h</i>",
      "application/vnd.plotly.v1+json": { data: [], layout: { width: 300 } },
      "text/plain": "p",
    },
    metadata: {},
  });
});
