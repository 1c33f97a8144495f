import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { asStorageError, checkOutputFolder, makeFolder, StorageError } from "../../src/system/storage";

const role = { role: "the test folder", elsewhere: "or pick another" };

test("makeFolder makes missing parents one by one and names the component that is a file", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-storage-"));
  makeFolder(path.join(root, "a", "b", "c"));
  assert.ok(fs.statSync(path.join(root, "a", "b", "c")).isDirectory());
  makeFolder(path.join(root, "a", "b", "c"));
  fs.writeFileSync(path.join(root, "file"), "");
  assert.throws(() => makeFolder(path.join(root, "file", "x")), { code: "ENOTDIR", path: path.join(root, "file") });
  // Under /proc a folder cannot be made; Node 20's recursive mkdirSync loops forever there, this fails at once.
  assert.throws(() => makeFolder("/proc/vae-storage-test/x"), { code: "ENOENT" });
  fs.rmSync(root, { recursive: true, force: true });
});

test("checkOutputFolder makes a folder and leaves only it; refuses a file, a dangling link and /proc by path", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-storage-"));
  await checkOutputFolder(path.join(root, "new", "out"), role);
  assert.deepEqual(fs.readdirSync(path.join(root, "new", "out")), [], "the probe file is gone");
  fs.writeFileSync(path.join(root, "file"), "");
  fs.symlinkSync(path.join(root, "nowhere"), path.join(root, "link"));
  const refusals: [string, RegExp][] = [
    [
      path.join(root, "file"),
      /^Cannot use .*\/file as the test folder: a file stands where a folder is needed \(ENOTDIR\)\. Move that file away, or pick another\. Nothing was trained\.$/,
    ],
    [path.join(root, "link", "x"), /a symbolic link to a place that does not exist \(ENOENT at .*\/link\)/],
    ["/proc/vae-storage-test", /this file system refuses new folders \(such as \/proc\) \(ENOENT\)/],
  ];
  for (const [dir, message] of refusals) {
    await assert.rejects(checkOutputFolder(dir, role), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.match(error.message, message);
      assert.equal(error.file, path.resolve(dir));
      return true;
    });
  }
  assert.deepEqual(fs.readdirSync(root).sort(), ["file", "link", "new"]);
  fs.rmSync(root, { recursive: true, force: true });
});

test("checkOutputFolder removes the probe files of checks whose process is gone, and nothing else", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-storage-"));
  // A pid that has ended: a process that ran and exited (pids are not reused this fast).
  const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  }).stdout;
  assert.match(gone, /^\d+$/);
  const left = [
    `.write-probe.${gone}.tmp`, // a check killed with its process group
    `.write-probe.${process.pid}.tmp`, // a check still running (this process is alive)
    ".write-probe.tmp", // not a probe's name: someone else's file
    "results.json",
  ];
  for (const name of left) fs.writeFileSync(path.join(root, name), "x");
  await checkOutputFolder(root, role);
  assert.deepEqual(fs.readdirSync(root).sort(), left.slice(1).sort());
  fs.rmSync(root, { recursive: true, force: true });
});

test("asStorageError turns any system error into a StorageError and leaves other errors alone", () => {
  const enotdir = Object.assign(new Error("ENOTDIR: not a directory"), { code: "ENOTDIR", path: "/x/file" });
  const converted = asStorageError(enotdir, "/x/file/y.json", "or choose another folder") as StorageError;
  assert.equal(
    converted.message,
    "Cannot write /x/file/y.json: a file stands where a folder is needed (ENOTDIR at /x/file). Move that file away, or choose another folder. Nothing half-written was kept.",
  );
  const unknown = asStorageError(Object.assign(new Error("odd"), { code: "EWEIRD" }), "/f") as StorageError;
  assert.match(unknown.message, /^Cannot write \/f: the system refused it \(EWEIRD\)\. Check the path/);
  const plain = new TypeError("not a system error");
  assert.equal(asStorageError(plain, "/f"), plain);
});
