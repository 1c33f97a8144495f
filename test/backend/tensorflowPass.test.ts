/**
 * The backend-independent tests again on tfjs-node's `tensorflow` backend (the first pass of `npm test`
 * runs them on the default backend): the model, the loss, Keras's Adam, the training loop (a seeded run
 * repeating bit for bit), a quick sweep, the gradients against the cpu backend, and the notebooks run
 * headlessly. Needs the binding built by `npm run setup-tfjs-node`; required in CI, skipped elsewhere
 * when it is missing.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { sweepKey } from "../../src/experiment/sweep";
import { TUTORIAL_CONFIG } from "../../src/vae/config";
import { PROJECT_ROOT } from "../../src/vae/data";

const FILES = [
  "test/vae/loss.test.ts",
  "test/vae/model.test.ts",
  "test/vae/optimizer.test.ts",
  "test/vae/train.test.ts",
  "test/experiment/sweep.test.ts",
];
/** Single tests of files that otherwise hold wasm-specific ones, or take long: run by name. */
const NAMED = {
  files: ["test/backend/select.test.ts", "test/notebook/runner.test.ts"],
  names: [
    "the VAE's gradients on real digits match the plain-JavaScript cpu backend",
    "every notebook executes headlessly in the project's tslab kernel",
  ],
};

function tfjsNodeLoads(): string | undefined {
  const result = spawnSync(process.execPath, ["-e", 'require("@tensorflow/tfjs-node")'], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" },
  });
  return result.status === 0
    ? undefined
    : (result.stderr
        .trim()
        .split("\n")
        .find((line) => /Error/.test(line)) ?? `exit ${result.status}`);
}

const failure = tfjsNodeLoads();
const skip =
  failure && !process.env.CI ? `tfjs-node does not load here (run npm run setup-tfjs-node): ${failure}` : false;

function runOnTensorflow(args: string[]): void {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=tap", ...args],
    {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
      // Without NODE_TEST_CONTEXT, which marks a child of the test runner and makes it skip its files.
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "NODE_TEST_CONTEXT")),
        VAE_BACKEND: "tensorflow",
        TF_CPP_MIN_LOG_LEVEL: "2",
      },
      maxBuffer: 256 << 20,
    },
  );
  const out = `${result.stdout}\n${result.stderr}`;
  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)`, "m").exec(out)?.[1] ?? NaN);
  const failed = out.split("\n").filter((line) => /^\s*not ok /.test(line));
  assert.equal(result.status, 0, `on the tensorflow backend: ${failed.join("; ") || out.slice(-3000)}`);
  assert.ok(count("pass") > 0 && count("fail") === 0, `expected passing tests and no failures:\n${out.slice(-3000)}`);
}

test("model, loss, optimizer, training and a quick sweep pass on the tensorflow backend", { skip }, () => {
  assert.equal(failure, undefined, `tfjs-node must load in CI (npm run setup-tfjs-node runs first): ${failure}`);
  runOnTensorflow(FILES.map((file) => path.join(PROJECT_ROOT, file)));
});

test(
  "the gradients against the cpu backend and the notebooks run headlessly pass on the tensorflow backend",
  { skip },
  () => {
    assert.equal(failure, undefined, `tfjs-node must load in CI (npm run setup-tfjs-node runs first): ${failure}`);
    runOnTensorflow([
      ...NAMED.names.flatMap((name) => ["--test-name-pattern", name]),
      ...NAMED.files.map((file) => path.join(PROJECT_ROOT, file)),
    ]);
  },
);

test("with tfjs-node loadable, the default is still wasm, and the backend line says why", { skip }, () => {
  const script =
    'require("./src/backend/select").initBackend({ quiet: true }).then((info) => { console.log(JSON.stringify(info)); process.exit(0); })';
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "VAE_BACKEND"));
  const result = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    env,
  });
  assert.equal(result.status, 0, result.stderr);
  const info = JSON.parse(result.stdout.trim().split("\n").pop() as string) as { name: string; reason: string };
  assert.equal(info.name, "wasm");
  assert.match(info.reason, /faster than tfjs-node/);
});

test("a sweep on tensorflow is cached under a key of its own", () => {
  const data = { fingerprint: "f" };
  const tensorflow = sweepKey(TUTORIAL_CONFIG, data, { name: "tensorflow" });
  for (const other of [
    { name: "wasm" as const, fma: true, fusedGradients: true },
    { name: "wasm" as const, fma: false, fusedGradients: true },
    { name: "cpu" as const },
  ]) {
    assert.notEqual(tensorflow, sweepKey(TUTORIAL_CONFIG, data, other), `tensorflow and ${JSON.stringify(other)}`);
  }
});
