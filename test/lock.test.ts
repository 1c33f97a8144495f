import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { isStale, readLock, tryLock } from "../src/lock";

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
  fs.writeFileSync(file, JSON.stringify({ pid: Number(dead.stdout.trim()), host: os.hostname(), createdAt: new Date().toISOString() }));
  assert.equal(isStale(file), true);
  const again = tryLock(file);
  assert.ok(again, "the stale lock was taken over");
  again();
});
