import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { runCli, TINY } from "../helpers";

const badFlags: [string[], RegExp][] = [
  [["--epoch", "3"], /Unknown option '--epoch'/],
  [["--epochs", "0"], /--epochs must be a whole number >= 1; got "0"/],
  [["--epochs", "1.5"], /--epochs must be a whole number >= 1; got "1\.5"/],
  [["--coefficients", ""], /--coefficients needs at least one number, e\.g\. --coefficients 0,0\.5,1; got ""/],
  [["--coefficients", "0,-1"], /--coefficients: "-1" is not a decimal number >= 0/],
  [["--coefficients", "0,abc"], /--coefficients: "abc" is not a decimal number >= 0/],
  [["--coefficients", "1,1"], /--coefficients repeats 1; give each value once/],
  [["--data", "foo"], /--data "foo" is not a data source; use auto, embedded or idx/],
  [["--backend", "foo"], /Unknown backend "foo"; use one of: tensorflow, wasm, cpu/],
  [["--profile", "foo"], /--profile "foo" is not a profile; use tutorial or quick/],
  [["--train-size", "9000", "--test-size", "2000", "--data", "embedded"], /--train-size \+ --test-size = 9000 \+ 2000 exceeds the 10000 embedded digits/],
  [["--learning-rate=-1"], /--learning-rate must be a decimal number > 0 \(such as 0\.001 or 1e-3\); got "-1"/],
  [["stray"], /Unexpected argument 'stray'/],
];

for (const [args, message] of badFlags) {
  test(`npm run sweep -- ${args.join(" ")}: a clear message and exit code 2`, () => {
    const { status, stderr } = runCli("sweep.ts", args);
    assert.equal(status, 2, stderr);
    assert.match(stderr, message);
    assert.match(stderr, /usage: npm run sweep/);
  });
}

test("VAE_PROFILE with an unknown name is refused too", () => {
  const { status, stderr } = runCli("sweep.ts", [], { VAE_PROFILE: "fast" });
  assert.equal(status, 2);
  assert.match(stderr, /VAE_PROFILE="fast" is not a profile/);
});

test("a diverging coefficient stops the run, names where, and keeps the finished ones", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-nan-"));
  // Seeded on the wasm backend, Adam at 0.05 survives c = 0 but blows up c = 0.5 (exp(zLogVar) overflows).
  const args = ["--coefficients", "0,0.5,20", "--epochs", "1", "--train-size", "512", "--test-size", "128", "--data", "embedded", "--learning-rate", "0.05", "--cache-dir", dir, "--out", dir];
  const { status, stderr } = runCli("sweep.ts", args, { VAE_BACKEND: "wasm" });
  assert.equal(status, 1);
  assert.match(stderr, /Training diverged for KL coefficient 0\.5 at epoch 1, batch \d+: .*(NaN|Infinity).*finished coefficients are kept/);
  const [key] = fs.readdirSync(dir);
  const entries = fs.readdirSync(path.join(dir, key)).filter((f) => f.endsWith(".json"));
  assert.deepEqual(entries, ["c=0.json"]);
  assert.deepEqual(fs.readdirSync(path.join(dir, key)).filter((f) => f.endsWith(".lock") || f.endsWith(".tmp")), [], "no lock or partial file left");
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
  const args = ["--coefficients", "0,1,2", "--epochs", "1", "--train-size", "256", "--test-size", "128", "--data", "embedded", "--out", dir, "--cache-dir", dir];
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
