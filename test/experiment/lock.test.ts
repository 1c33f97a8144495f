import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { isStale, readLock, tryLock } from "../../src/experiment/lock";
import { procStat } from "../../src/system/proc";

test("a lock is exclusive while its owner lives and is taken over once it is dead", () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vae-lock-")), "c=1.lock");
  const release = tryLock(file);
  assert.ok(release);
  assert.equal(readLock(file)?.pid, process.pid);
  assert.equal(tryLock(file), undefined, "held by a live process (this one)");
  release();
  assert.ok(!fs.existsSync(file));
  // A lock left by a process that has exited, as after SIGKILL.
  const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  fs.writeFileSync(
    file,
    JSON.stringify({ pid: Number(dead.stdout.trim()), host: os.hostname(), createdAt: new Date().toISOString() }),
  );
  assert.equal(isStale(file), true);
  const again = tryLock(file);
  assert.ok(again, "the stale lock was taken over");
  again();
});

test("a lock whose pid now belongs to another process, or to a zombie, is stale", () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vae-lock-")), "c=1.lock");
  const here = procStat(process.pid);
  if (!here) return; // no /proc: only signal 0 can be asked
  // This process's pid, but recorded with another start time: the pid was reused.
  fs.writeFileSync(
    file,
    JSON.stringify({
      pid: process.pid,
      host: os.hostname(),
      createdAt: new Date().toISOString(),
      startTime: here.startTime - 1,
    }),
  );
  assert.equal(isStale(file), true);
  fs.writeFileSync(
    file,
    JSON.stringify({
      pid: process.pid,
      host: os.hostname(),
      createdAt: new Date().toISOString(),
      startTime: here.startTime,
    }),
  );
  assert.equal(isStale(file), false);
  // A child that has exited but is not reaped yet (no event loop turn has run since) is a zombie.
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const pid = child.pid as number;
  const deadline = Date.now() + 10_000;
  while (procStat(pid)?.state !== "Z" && Date.now() < deadline)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  assert.equal(procStat(pid)?.state, "Z", "the child became a zombie");
  fs.writeFileSync(file, JSON.stringify({ pid, host: os.hostname(), createdAt: new Date().toISOString() }));
  assert.equal(isStale(file), true);
});

/** A child holding two locks, with or without `releaseLocksOnSignals`, stopped by SIGTERM: its signal and the locks left. */
async function stopLockHolder(
  dir: string,
  release: boolean,
  stopSignal: NodeJS.Signals = "SIGTERM",
): Promise<{ signal: NodeJS.Signals | null; left: string[] }> {
  const lockModule = JSON.stringify(path.join(__dirname, "..", "..", "src", "experiment", "lock.ts"));
  const script = [
    `const lock = require(${lockModule});`,
    release ? "lock.releaseLocksOnSignals();" : "",
    `for (const name of ["c=0.lock", "c=1.lock"]) if (!lock.tryLock(require("path").join(${JSON.stringify(dir)}, name))) throw new Error("not taken");`,
    `console.log("holding"); setInterval(() => {}, 1000);`,
  ].join("\n");
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith(".lock")).length, 2, "both locks taken");
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
    child.once("exit", (_code, exitSignal) => resolve(exitSignal));
    child.kill(stopSignal);
  });
  return { signal, left: fs.readdirSync(dir).sort() };
}

test("a process stopped by SIGTERM or SIGINT releases the locks it holds first, and still ends by that signal", async () => {
  const withRelease = await stopLockHolder(fs.mkdtempSync(path.join(os.tmpdir(), "vae-lock-")), true);
  assert.deepEqual(withRelease, { signal: "SIGTERM", left: [] });
  const interrupted = await stopLockHolder(fs.mkdtempSync(path.join(os.tmpdir(), "vae-lock-")), true, "SIGINT");
  assert.deepEqual(interrupted, { signal: "SIGINT", left: [] });
  // Without it, the default action ends the process with both locks on disk.
  const without = await stopLockHolder(fs.mkdtempSync(path.join(os.tmpdir(), "vae-lock-")), false);
  assert.deepEqual(without, { signal: "SIGTERM", left: ["c=0.lock", "c=1.lock"] });
});
