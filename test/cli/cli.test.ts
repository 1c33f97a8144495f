import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { runCli, startCli, TINY } from "../helpers";

// Flags, environment variables and paths a user may get wrong: test/cli/cases.test.ts.

test("a diverging coefficient stops the run, names where, and keeps the finished ones", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-nan-"));
  // Seeded on the wasm backend, Adam at 0.05 survives c = 0 but blows up c = 0.5 (exp(zLogVar) overflows).
  const args = [
    "--coefficients",
    "0,0.5,20",
    "--epochs",
    "1",
    "--train-size",
    "512",
    "--test-size",
    "128",
    "--data",
    "embedded",
    "--learning-rate",
    "0.05",
    "--cache-dir",
    dir,
    "--out",
    dir,
  ];
  const { status, stderr } = runCli("sweep.ts", args, { VAE_BACKEND: "wasm" });
  assert.equal(status, 1);
  assert.match(
    stderr,
    /Training diverged for KL coefficient 0\.5 at epoch 1, batch \d+: .*(NaN|Infinity).*finished coefficients are kept/,
  );
  const [key] = fs.readdirSync(dir);
  const entries = fs.readdirSync(path.join(dir, key)).filter((f) => f.endsWith(".json"));
  assert.deepEqual(entries, ["c=0.json"]);
  assert.deepEqual(
    fs.readdirSync(path.join(dir, key)).filter((f) => f.endsWith(".lock") || f.endsWith(".tmp")),
    [],
    "no lock or partial file left",
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

test("npm run fetch-mnist refuses a bad address and reports a failed download", () => {
  const bad = runCli("fetchMnist.ts", ["--base-url", "not a url"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--base-url "not a url" is not a URL/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-fetch-"));
  // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
  const failed = runCli("fetchMnist.ts", ["--base-url", "http://127.0.0.1:9/", "--dir", dir]);
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /Could not download http:\/\/127\.0\.0\.1:9\/train-images-idx3-ubyte\.gz/);
  assert.deepEqual(fs.readdirSync(dir), []);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("--help prints the usage and exits 0", () => {
  const { status, stdout } = runCli("sweep.ts", ["--help", ...TINY]);
  assert.equal(status, 0);
  assert.match(stdout, /--coefficients LIST/);
});

test("--jobs auto (the default) trains on two processes on wasm with two cores, one without the cache; other values are checked", (t) => {
  if (os.cpus().length < 2) return t.skip("one core here");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-jobs-"));
  const args = [
    "--coefficients",
    "0,1,2",
    "--epochs",
    "1",
    "--train-size",
    "256",
    "--test-size",
    "128",
    "--data",
    "embedded",
    "--out",
    dir,
    "--cache-dir",
    dir,
  ];
  const auto = runCli("sweep.ts", args, { VAE_BACKEND: "wasm" });
  assert.equal(auto.status, 0, auto.stderr);
  assert.match(auto.stdout, /up to 2 processes \(--jobs\)/);
  assert.match(auto.stdout, /wasm.*1 thread[,)]/, "each process on one thread");
  const alone = runCli("sweep.ts", [...args, "--no-cache"], { VAE_BACKEND: "wasm" });
  assert.equal(alone.status, 0, alone.stderr);
  assert.match(alone.stdout, /up to 1 process \(--jobs\)/);
  assert.match(alone.stdout, /wasm.*2 threads[,)]/, "one process uses both cores itself");
  const bad = runCli("sweep.ts", [...args, "--jobs", "many"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--jobs/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("--seeds takes whole numbers and A-B ranges, and refuses the rest by name", async () => {
  const { parseSeedList } = await import("../../src/cli/sweep");
  assert.deepEqual(parseSeedList("42-46"), [42, 43, 44, 45, 46]);
  assert.deepEqual(parseSeedList("0, 1,2,3,4"), [0, 1, 2, 3, 4]);
  assert.deepEqual(parseSeedList("7,1-3"), [7, 1, 2, 3]);
  const refused: [string, RegExp][] = [
    ["", /--seeds needs at least one seed/],
    ["4,x", /--seeds: "x" is not a whole number >= 0 or a range A-B/],
    ["-1", /--seeds: "-1" is not a whole number/],
    ["46-42", /runs backwards; write 42-46/],
    ["1,2,1", /seed 1 is listed twice/],
    ["40-45,42", /seed 42 is listed twice/],
    ["0-5000", /holds 5001 seeds/],
    ["4294967296", /goes past 4294967295/],
  ];
  for (const [value, message] of refused) assert.throws(() => parseSeedList(value), message, value);
  // On the command line, a usage error (exit code 2) before anything is trained.
  const run = runCli("sweep.ts", [...TINY, "--seeds", "3,3"]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--seeds: seed 3 is listed twice in "3,3"/);
});

/**
 * Processes still alive whose arguments name `cacheDir`: the sweep's workers and the short-lived process
 * a worker starts to check the cache folder (it removes its probe file itself, even if the worker is gone).
 */
function processesOf(cacheDir: string, kind = ""): number[] {
  return fs
    .readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const args = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return args.includes(cacheDir) && args.includes(kind) && pid !== String(process.pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  test(`${signal} on npm run sweep with worker processes: one line of what is kept and dropped, no lock left, exit ${code}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-signal-"));
    const cacheDir = path.join(dir, "cache");
    const args = [
      "--jobs",
      "2",
      "--coefficients",
      "0,1,2,5",
      "--epochs",
      "3",
      "--train-size",
      "2048",
      "--test-size",
      "256",
      "--data",
      "embedded",
      "--cache-dir",
      cacheDir,
      "--out",
      path.join(dir, "out"),
    ];
    const child = startCli("sweep.ts", args, { VAE_BACKEND: "wasm" });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (status) => resolve(status)));
    const entries = () => {
      const [key] = fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [];
      return key ? fs.readdirSync(path.join(cacheDir, key)).map((f) => path.join(cacheDir, key, f)) : [];
    };
    // SIGINT while the first coefficients train; SIGTERM once one is cached, so that something is kept.
    const ready = () =>
      signal === "SIGINT"
        ? /KL coefficient 0: training/.test(stderr) && processesOf(cacheDir, "sweepWorker").length > 0
        : entries().some((f) => f.endsWith(".json"));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (!ready()) return;
        clearInterval(timer);
        child.kill(signal);
        resolve();
      }, 20);
      void exited.then(() => {
        clearInterval(timer);
        reject(new Error(`the sweep ended before the signal: ${stderr}`));
      });
    });
    assert.equal(await exited, code, stderr);
    const lines = stderr.split("\n").filter((line) => line.startsWith("Interrupted"));
    assert.equal(lines.length, 1, stderr);
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    const cached = entries()
      .filter((f) => f.endsWith(".json"))
      .map((f) => Number(/c=([\d.]+)\.json$/.exec(f)?.[1]));
    const kept = /: c = ([\d., ]+) (is|are) cached in /.exec(lines[0]);
    if (cached.length === 0)
      assert.match(lines[0], new RegExp(`^Interrupted \\(${signal}\\): nothing was cached yet; dropped: c = 0 \\(`));
    else
      assert.deepEqual(
        kept?.[1].split(", ").map(Number).sort(),
        cached.sort(),
        `the line names exactly the cached coefficients: ${lines[0]}`,
      );
    assert.match(lines[0], /dropped: c = [\d.]+ \((after epoch \d of 3|starting)\)/);
    // The sweep waits a few seconds for its workers; on a loaded machine one may be mid-step (loading
    // the digits) a little longer, and ends as soon as it gets back to its event loop.
    for (let waited = 0; processesOf(cacheDir).length > 0 && waited < 30_000; waited += 100)
      await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(processesOf(cacheDir), [], "no worker (or folder-checking) process left");
    assert.deepEqual(
      entries().filter((f) => f.endsWith(".lock") || f.endsWith(".tmp")),
      [],
      "no lock or temporary file left",
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
