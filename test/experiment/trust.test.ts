import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { buildModel, snapshotWeights } from "../../src/vae/model";
import { runSweep } from "../../src/experiment/sweep";
import { train } from "../../src/vae/train";
import { runCli, startCli } from "../helpers";

// One process: the test kills it, and a worker of its own would go on without it.
const SWEEP = [
  "--jobs",
  "1",
  "--coefficients",
  "0,1,5",
  "--epochs",
  "2",
  "--train-size",
  "2048",
  "--test-size",
  "256",
  "--data",
  "embedded",
];

function entries(cacheDir: string): { key: string; files: string[] } {
  // The key's folder only: the folder check's short-lived probe file may sit beside it.
  const [key] = fs.readdirSync(cacheDir).filter((name) => /^[0-9a-f]{16}$/.test(name));
  return { key, files: key ? fs.readdirSync(path.join(cacheDir, key)).sort() : [] };
}

function readResults(dir: string) {
  return JSON.parse(fs.readFileSync(path.join(dir, "latest.json"), "utf8")) as {
    coefficients: { klCoefficient: number; fromCache: boolean; history: { train: unknown; test: unknown }[] }[];
  };
}

function blobs(cacheDir: string): Map<string, Buffer> {
  const { key, files } = entries(cacheDir);
  return new Map(files.filter((f) => f.endsWith(".f32")).map((f) => [f, fs.readFileSync(path.join(cacheDir, key, f))]));
}

before(async () => {
  await initBackend({ quiet: true });
});

test("a sweep killed with SIGKILL mid-coefficient resumes and ends equal to an uninterrupted run", async () => {
  const interrupted = fs.mkdtempSync(path.join(os.tmpdir(), "vae-kill-"));
  const child = startCli("sweep.ts", [...SWEEP, "--cache-dir", interrupted, "--out", interrupted]);
  // Kill as soon as the first coefficient is on disk: the second is then in training.
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (entries(interrupted).files.includes("c=0.json")) {
        clearInterval(timer);
        child.kill("SIGKILL");
        resolve();
      }
    }, 10);
    child.on("exit", () => {
      clearInterval(timer);
      reject(new Error("the sweep ended before it could be killed"));
    });
  });
  await new Promise((resolve) => child.on("exit", resolve));
  const afterKill = entries(interrupted).files;
  assert.ok(
    afterKill.includes("c=0.json") && !afterKill.includes("c=1.json"),
    `killed mid-coefficient: ${afterKill.join(", ")}`,
  );

  const resumed = runCli("sweep.ts", [...SWEEP, "--cache-dir", interrupted, "--out", interrupted]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /\[1\/3\] KL coefficient 0: loaded from cache/);
  assert.deepEqual(
    readResults(interrupted).coefficients.map((c) => c.fromCache),
    [true, false, false],
  );

  const clean = fs.mkdtempSync(path.join(os.tmpdir(), "vae-clean-"));
  assert.equal(runCli("sweep.ts", [...SWEEP, "--cache-dir", clean, "--out", clean]).status, 0);
  const losses = (dir: string) =>
    readResults(dir).coefficients.map((c) => c.history.map(({ train, test }) => ({ train, test })));
  assert.deepEqual(losses(interrupted), losses(clean), "the same losses, epoch by epoch");
  const resumedBlobs = blobs(interrupted);
  const cleanBlobs = blobs(clean);
  assert.deepEqual([...resumedBlobs.keys()], [...cleanBlobs.keys()]);
  for (const [name, bytes] of cleanBlobs)
    assert.ok(bytes.equals(resumedBlobs.get(name) as Buffer), `${name} is bit-identical`);
  assert.deepEqual(
    entries(interrupted).files.filter((f) => f.endsWith(".lock") || f.endsWith(".tmp")),
    [],
    "the dead run's lock was taken over and removed",
  );
});

test("two processes running the same sweep at once share the work and corrupt nothing", async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-twin-"));
  const args = [
    "--jobs",
    "1",
    "--coefficients",
    "0,0.5,1,5",
    "--epochs",
    "2",
    "--train-size",
    "1024",
    "--test-size",
    "256",
    "--data",
    "embedded",
    "--cache-dir",
    cacheDir,
  ];
  const outA = fs.mkdtempSync(path.join(os.tmpdir(), "vae-a-"));
  const outB = fs.mkdtempSync(path.join(os.tmpdir(), "vae-b-"));
  const run = (out: string) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = startCli("sweep.ts", [...args, "--out", out]);
      let stderr = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      child.on("exit", (code) => resolve({ code, stderr }));
    });
  const [a, b] = await Promise.all([run(outA), run(outB)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const trainedBy = (stderr: string) =>
    [...stderr.matchAll(/KL coefficient ([\d.]+): training\n/g)].map((m) => Number(m[1]));
  const trained = [...trainedBy(a.stderr), ...trainedBy(b.stderr)].sort((x, y) => x - y);
  assert.deepEqual(trained, [0, 0.5, 1, 5], "each coefficient trained by exactly one process");
  const losses = (dir: string) =>
    readResults(dir).coefficients.map((c) => c.history.map(({ train, test }) => ({ train, test })));
  assert.deepEqual(losses(outA), losses(outB), "both processes report the same results");
  const reread = runCli("sweep.ts", [...args, "--out", outA]);
  assert.equal(reread.status, 0);
  assert.equal((reread.stderr.match(/loaded from cache/g) ?? []).length, 4, "every entry is valid");
  assert.deepEqual(
    entries(cacheDir).files.filter((f) => !f.endsWith(".json") && !f.endsWith(".f32")),
    [],
  );
});

test("memory stays flat across epochs and coefficients", async () => {
  const config = resolveConfig({
    klCoefficients: [0, 1, 5],
    epochs: 6,
    trainSize: 512,
    testSize: 128,
    dataSource: "embedded",
    manifoldSize: 5,
  });
  const data = loadMnist(config);
  const perEpoch: { tensors: number; bytes: number; rss: number }[] = [];
  const perRun: number[] = [];
  await runSweep({
    config,
    data,
    cacheDir: false,
    onEpochEnd: () =>
      perEpoch.push({ tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, rss: process.memoryUsage().rss }),
    onRunEnd: () => perRun.push(tf.memory().numTensors),
  });
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`tensors per epoch: ${perEpoch.map((e) => e.tensors).join(" ")}`);
  console.log(`tensor MB per epoch: ${perEpoch.map((e) => mb(e.bytes)).join(" ")}`);
  console.log(`RSS MB per epoch: ${perEpoch.map((e) => mb(e.rss)).join(" ")}`);
  console.log(`tensors after each coefficient: ${perRun.join(" ")}`);
  assert.equal(new Set(perEpoch.map((e) => e.tensors)).size, 1, "the same tensor count after every epoch");
  assert.equal(new Set(perEpoch.map((e) => e.bytes)).size, 1, "the same tensor bytes after every epoch");
  assert.equal(new Set(perRun).size, 1, "the same tensor count after every coefficient");
  // The process may settle in the first coefficient; after it, RSS must not keep growing.
  const later = perEpoch.slice(config.epochs).map((e) => e.rss);
  assert.ok(
    Math.max(...later) - later[0] < 64 * 2 ** 20,
    `RSS grew by ${mb(Math.max(...later) - later[0])} MB after the first coefficient`,
  );
});

test("the same seed gives bit-identical losses and weights; another seed differs", async () => {
  const config = resolveConfig({ epochs: 1, trainSize: 256, testSize: 128, dataSource: "embedded" });
  const data = loadMnist(config);
  const run = async (seed: number) => {
    const model = buildModel({ ...config, seed });
    const history = await train(model, {
      config: { ...config, seed },
      klCoefficient: 1,
      xTrain: data.xTrain,
      xTest: data.xTest,
    });
    return {
      losses: history.map((r) => [r.train, r.test]),
      weights: snapshotWeights(model).map((w) => Buffer.from(w.values.buffer)),
    };
  };
  const [a, b, c] = [await run(1), await run(1), await run(2)];
  assert.deepEqual(a.losses, b.losses);
  a.weights.forEach((w, i) => assert.ok(w.equals(b.weights[i]), `weight ${i} is bit-identical`));
  assert.notDeepEqual(a.losses, c.losses);
  assert.ok(!a.weights[0].equals(c.weights[0]));
});
