/**
 * Disks that refuse a write: a cache on a small tmpfs that fills up while the third coefficient is
 * written, and a cache (and a results folder) on a read-only bind mount, which root cannot write either
 * (file permissions would not stop root). Each must end with an error naming the file and what to do,
 * keep the finished coefficients, leave nothing half-written, and serve nothing half-written later.
 * Mounting needs root (CI runs as root); elsewhere the tests are skipped with that reason.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { EntryStore } from "../../src/experiment/cache";
import { readResults } from "../../src/experiment/results";
import { runCli } from "../helpers";

const SWEEP = ["--jobs", "1", "--epochs", "1", "--train-size", "256", "--test-size", "128", "--data", "embedded"];
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-disks-"));
const mounted: string[] = [];

function sh(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

function mount(args: string[], target: string): void {
  fs.mkdirSync(target, { recursive: true });
  const result = sh("mount", [...args, target]);
  assert.ok(result.ok, `mount ${args.join(" ")} ${target}: ${result.output}`);
  mounted.push(target);
}

function unmount(target: string): void {
  if (!mounted.includes(target)) return;
  if (!sh("umount", [target]).ok) sh("umount", ["-l", target]);
  mounted.splice(mounted.indexOf(target), 1);
}

after(() => {
  for (const target of [...mounted].reverse()) unmount(target);
  fs.rmSync(root, { recursive: true, force: true });
});

/** Why these tests cannot run here, or undefined when a tmpfs can be mounted. */
function mountUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return "mounting a tmpfs or a read-only bind mount needs root (CI runs as root)";
  const probe = path.join(root, "probe");
  fs.mkdirSync(probe);
  const result = sh("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
  if (!result.ok) return `mount -t tmpfs is not allowed here: ${result.output}`;
  sh("umount", [probe]);
  return undefined;
}
const unsupported = mountUnsupported();

function filesUnder(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort() : [];
}

function blobs(cacheDir: string): Map<string, Buffer> {
  return new Map(
    filesUnder(cacheDir)
      .filter((f) => f.endsWith(".f32"))
      .map((f) => [f, fs.readFileSync(path.join(cacheDir, f))]),
  );
}

/** An uninterrupted run of coefficients 0, 1, 2 on an ordinary disk, to compare blobs with. */
let referenceBlobs: Map<string, Buffer> | undefined;
function reference(): Map<string, Buffer> {
  if (!referenceBlobs) {
    const dir = path.join(root, "reference");
    const run = runCli("sweep.ts", [...SWEEP, "--coefficients", "0,1,2", "--cache-dir", dir, "--out", dir]);
    assert.equal(run.status, 0, run.stderr);
    referenceBlobs = blobs(dir);
  }
  return referenceBlobs;
}

function assertSameBlobs(cacheDir: string, names: (name: string) => boolean, what: string): void {
  const expected = [...reference()].filter(([name]) => names(name));
  const actual = blobs(cacheDir);
  assert.deepEqual(
    [...actual.keys()].filter(names),
    expected.map(([name]) => name),
    what,
  );
  for (const [name, bytes] of expected)
    assert.ok(bytes.equals(actual.get(name) as Buffer), `${what}: ${name} is bit-identical`);
}

const errorLine = (stderr: string) => stderr.split("\n").find((line) => line.startsWith("error: ")) ?? "";

test(
  "a cache disk that fills up while c = 2 is written: a clear error, c = 0 and 1 kept, nothing half-written, and later c = 2 trained afresh",
  { skip: unsupported },
  (t) => {
    const disk = path.join(root, "full");
    // Three entries take about 17.3 MiB (a 2.7 MiB manifold and a 3.1 MiB weight blob each): 15 MiB
    // holds two and part of the third.
    mount(["-t", "tmpfs", "-o", "size=15m", "tmpfs"], disk);
    try {
      const cacheDir = path.join(disk, "cache");
      const args = [...SWEEP, "--coefficients", "0,1,2", "--cache-dir", cacheDir, "--out", path.join(root, "full-out")];
      const full = runCli("sweep.ts", args);
      const message = errorLine(full.stderr);
      t.diagnostic(`disk full, exit ${full.status}: ${message}`);
      assert.equal(full.status, 1);
      assert.match(
        message,
        /^error: Cannot write \/.*\/c=2\.\w+\.f32: no space left on the device \(ENOSPC\)\. Free space on that disk, or use another cache folder \(--cache-dir DIR, VAE_CACHE_DIR in a notebook, cacheDir in runSweep\) or none \(--no-cache\)\. Nothing half-written was kept\. c = 2 was trained but not cached\. Coefficients finished so far are kept in \/.*: c = 0, 1\.$/,
      );
      const files = filesUnder(cacheDir);
      assert.deepEqual(
        files.filter((f) => /c=2\.|\.tmp$|\.lock$/.test(f)),
        [],
        "no part of c = 2, no temporary file, no lock",
      );
      const [key] = fs.readdirSync(cacheDir);
      const store = new EntryStore(path.join(cacheDir, key));
      assert.ok(store.read("c=0") && store.read("c=1"), "the finished entries read back");
      assertSameBlobs(cacheDir, (name) => !name.includes("c=2."), "c = 0 and 1 as an uninterrupted run wrote them");

      // With room again, the kept coefficients are loaded and c = 2 is trained, not served half-written.
      assert.ok(sh("mount", ["-o", "remount,size=64m", disk]).ok);
      const again = runCli("sweep.ts", args);
      assert.equal(again.status, 0, again.stderr);
      assert.match(
        again.stderr,
        /\[1\/3\] KL coefficient 0: loaded from cache\n\[2\/3\] KL coefficient 1: loaded from cache\n\[3\/3\] KL coefficient 2: training\n/,
      );
      assertSameBlobs(cacheDir, () => true, "after the rerun, every blob");
    } finally {
      unmount(disk);
    }
  },
);

test(
  "a read-only cache serves its complete entries, refuses to train by name, and a read-only results folder is named",
  { skip: unsupported },
  (t) => {
    const source = path.join(root, "ro-source");
    const first = runCli("sweep.ts", [
      ...SWEEP,
      "--coefficients",
      "0,1",
      "--cache-dir",
      path.join(source, "cache"),
      "--out",
      path.join(source, "out"),
    ]);
    assert.equal(first.status, 0, first.stderr);
    const before = filesUnder(source).map((f) => [
      f,
      fs.statSync(path.join(source, f)).isFile() ? fs.readFileSync(path.join(source, f)).toString("base64") : "folder",
    ]);
    const readOnly = path.join(root, "ro");
    mount(["--bind", source], readOnly);
    try {
      assert.ok(sh("mount", ["-o", "remount,bind,ro", readOnly]).ok, "remounted read-only");
      assert.equal(sh("touch", [path.join(readOnly, "cache", "x")]).ok, false, "root cannot write there either");
      const cacheDir = path.join(readOnly, "cache");
      const writableOut = path.join(root, "ro-out");

      const refused = runCli("sweep.ts", [
        ...SWEEP,
        "--coefficients",
        "0,1,2",
        "--cache-dir",
        cacheDir,
        "--out",
        writableOut,
      ]);
      const cacheMessage = errorLine(refused.stderr);
      t.diagnostic(`read-only cache, exit ${refused.status}: ${cacheMessage}`);
      assert.equal(refused.status, 1);
      assert.match(
        cacheMessage,
        /^error: Cannot use \/.*\/cache\/[0-9a-f]{16} as the cache folder: the file system is read-only \(EROFS\)\. Remount it read-write, or use another cache folder \(--cache-dir DIR, VAE_CACHE_DIR in a notebook, cacheDir in runSweep\) or none \(--no-cache\)\. Nothing was trained\.$/,
      );
      assert.doesNotMatch(refused.stderr, /KL coefficient 2: training\n/, "refused before training, not after");

      // Both entries are served from the read-only cache, which needs no write.
      const served = runCli("sweep.ts", [
        ...SWEEP,
        "--coefficients",
        "0,1",
        "--cache-dir",
        cacheDir,
        "--out",
        writableOut,
      ]);
      assert.equal(served.status, 0, served.stderr);
      assert.equal(
        (served.stderr.match(/loaded from cache/g) ?? []).length,
        2,
        "both entries served from the read-only cache",
      );
      // A read-only results folder is refused before anything else happens.
      const results = runCli("sweep.ts", [
        ...SWEEP,
        "--coefficients",
        "0,1",
        "--cache-dir",
        cacheDir,
        "--out",
        path.join(readOnly, "out"),
      ]);
      assert.doesNotMatch(results.stderr, /loaded from cache|training/, "refused before the sweep");
      const resultsMessage = errorLine(results.stderr);
      t.diagnostic(`read-only results folder, exit ${results.status}: ${resultsMessage}`);
      assert.equal(results.status, 1);
      assert.match(
        resultsMessage,
        /^error: Cannot use \/.*\/out as the results folder \(--out\): the file system is read-only \(EROFS\)\. Remount it read-write, or name another results folder with --out DIR\. Nothing was trained\.$/,
      );
      assert.equal(
        readResults(path.join(readOnly, "out", "latest.json")).coefficients.length,
        2,
        "the earlier results file is whole",
      );
    } finally {
      unmount(readOnly);
    }
    const after = filesUnder(source).map((f) => [
      f,
      fs.statSync(path.join(source, f)).isFile() ? fs.readFileSync(path.join(source, f)).toString("base64") : "folder",
    ]);
    assert.deepEqual(after, before, "the read-only folders are as they were");

    // Writable again: c = 0 and 1 come from the cache, c = 2 is trained; every blob as an uninterrupted run's.
    const writable = runCli("sweep.ts", [
      ...SWEEP,
      "--coefficients",
      "0,1,2",
      "--cache-dir",
      path.join(source, "cache"),
      "--out",
      path.join(source, "out"),
    ]);
    assert.equal(writable.status, 0, writable.stderr);
    assert.equal((writable.stderr.match(/loaded from cache/g) ?? []).length, 2);
    assertSameBlobs(path.join(source, "cache"), () => true, "after the rerun, every blob");
  },
);
