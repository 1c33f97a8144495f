import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { hasProc, procStat, procThreads } from "../../src/system/proc";

test("this process's CPU time from /proc agrees with process.cpuUsage()", (t) => {
  if (!hasProc()) return t.skip("no /proc here");
  const busyUntil = Date.now() + 300;
  while (Date.now() < busyUntil);
  const usage = process.cpuUsage();
  const stat = procStat(process.pid);
  assert.ok(stat);
  assert.equal(stat.state, "R", "it is running while it reads");
  // Two readings of one clock, /proc's in hundredths of a second: they differ by a tick or two.
  assert.ok(
    Math.abs(stat.cpuSeconds - (usage.user + usage.system) / 1e6) < 0.05,
    `${stat.cpuSeconds} vs ${(usage.user + usage.system) / 1e6}`,
  );
  assert.ok(stat.startTime > 0);
  assert.ok(procThreads(process.pid).length >= 2, "Node runs a main thread and worker threads");
});

test("a name with spaces and parentheses does not shift the fields", async (t) => {
  if (!hasProc()) return t.skip("no /proc here");
  const child = spawn(process.execPath, ["-e", "process.title = 'a) b (c'; setTimeout(() => {}, 5000)"], {
    stdio: "ignore",
  });
  try {
    const pid = child.pid as number;
    let stat = procStat(pid);
    for (let i = 0; i < 100 && stat?.name !== "a) b (c"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stat = procStat(pid);
    }
    assert.equal(stat?.name, "a) b (c");
    assert.ok(["S", "R"].includes(stat?.state as string), `state ${stat?.state}`);
    assert.ok(
      (stat?.startTime as number) >= (procStat(process.pid)?.startTime as number),
      "started after this process",
    );
  } finally {
    child.kill();
  }
});

test("a pid that does not exist reads as undefined", () => {
  assert.equal(procStat(2 ** 22 + 1), undefined);
  assert.deepEqual(procThreads(2 ** 22 + 1), []);
});
