import assert from "node:assert/strict";
import { test } from "node:test";
import { withTimeLimit } from "../../src/system/timeLimit";

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

test("work that finishes in time gives its value; the limit's handler never runs", async () => {
  let ran = false;
  assert.equal(await withTimeLimit(after(10, "done"), 1_000, () => ((ran = true), "late")), "done");
  assert.equal(ran, false);
});

test("work that takes too long gives the handler's value, or its error, at the limit", async () => {
  const started = performance.now();
  assert.equal(await withTimeLimit(new Promise(() => undefined), 50, () => "timeout" as const), "timeout");
  assert.ok(performance.now() - started < 1_000);
  await assert.rejects(
    withTimeLimit(new Promise(() => undefined), 50, () => {
      throw new Error("too slow");
    }),
    /too slow/,
  );
});

test("a failure of the work comes through; a limit of 0 means none", async () => {
  await assert.rejects(
    withTimeLimit(Promise.reject(new Error("broken")), 1_000, () => "timeout"),
    /broken/,
  );
  assert.equal(await withTimeLimit(after(30, 7), 0, () => -1), 7);
});
