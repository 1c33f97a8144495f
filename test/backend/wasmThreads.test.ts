import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { before, test } from "node:test";
import { initBackend, type BackendInfo } from "../../src/backend/select";
import { PROJECT_ROOT } from "../../src/vae/data";
import { wasmThreadCount, withWasmThreads } from "../../src/backend/wasmThreads";
import { gradientDigest } from "../gradientDigest";

let info: BackendInfo;
before(async () => {
  info = await initBackend({ quiet: true });
});

test("VAE_WASM_THREADS: the core count by default, a whole number otherwise, with a clear error", () => {
  assert.equal(wasmThreadCount({}), Math.max(1, Math.min(4, os.cpus().length)));
  assert.equal(wasmThreadCount({ VAE_WASM_THREADS: "1" }), 1);
  assert.equal(wasmThreadCount({ VAE_WASM_THREADS: " 3 " }), 3);
  for (const bad of ["0", "1.5", "two", "-2"]) {
    assert.throws(
      () => wasmThreadCount({ VAE_WASM_THREADS: bad }),
      new RegExp(`VAE_WASM_THREADS must be a whole number from 1 to 64 \\(1 turns threads off\\); got "${bad}"`),
    );
  }
});

test("on a multi-core machine the wasm backend starts with threads, and says so", (t) => {
  if (info.name !== "wasm" || process.env.VAE_WASM_THREADS) return t.skip("not the default wasm backend");
  assert.equal(info.threads, wasmThreadCount());
  if (os.cpus().length >= 2)
    assert.ok(info.threads >= 2, `expected threads on ${os.cpus().length} cores; got ${info.threads}`);
});

test("threads change no bit of the gradients, and a threaded process exits by itself", (t) => {
  if (info.name !== "wasm") return t.skip("threads are a wasm matter");
  const here = gradientDigest();
  // Each child exits once its promise settles; one whose threads kept it alive would hit the timeout.
  const script = `require(${JSON.stringify(path.join(PROJECT_ROOT, "src", "backend", "select.ts"))}).initBackend({ quiet: true }).then((b) => { const d = require(${JSON.stringify(path.join(PROJECT_ROOT, "test", "gradientDigest.ts"))}).gradientDigest(); console.log(JSON.stringify({ threads: b.threads, d })); })`;
  const digestWith = (threads: string) => {
    const run = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, VAE_WASM_THREADS: threads, VAE_BACKEND: "wasm" },
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(run.status, 0, `child with ${threads} thread(s) failed or hung: ${run.stderr}`);
    return JSON.parse(run.stdout.trim().split("\n").pop() as string) as { threads: number; d: string };
  };
  const single = digestWith("1");
  const double = digestWith("2");
  assert.equal(single.threads, 1);
  assert.equal(double.threads, 2);
  assert.equal(double.d, single.d);
  assert.equal(here, single.d);
});

test("a threaded build that never starts is given up after the time limit, with everything it changed restored", async () => {
  const blob = globalThis.Blob;
  const createObjectURL = URL.createObjectURL;
  const started = performance.now();
  await assert.rejects(
    withWasmThreads(2, () => new Promise<boolean>(() => undefined), 200),
    /did not start within 0\.2 s/,
  );
  assert.ok(performance.now() - started < 5_000);
  assert.equal(globalThis.Blob, blob);
  assert.equal(URL.createObjectURL, createObjectURL);
});
