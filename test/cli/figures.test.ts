import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { findChromium } from "../../src/plots/browser";
import { runCli, TINY } from "../helpers";

test("npm run figures writes every figure as a PNG of the layout's size", (t) => {
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-figures-"));
  const run = runCli("figures.ts", [
    ...TINY,
    "--coefficients",
    "0,1",
    "--cache-dir",
    dir,
    "--out",
    path.join(dir, "png"),
  ]);
  assert.equal(run.status, 0, run.stderr);
  const files = fs.readdirSync(path.join(dir, "png")).sort();
  assert.deepEqual(files, [
    "decoder-c0.png",
    "decoder-c1.png",
    "decoder-grid.png",
    "encoder-c0.png",
    "encoder-c1.png",
    "encoder-grid.png",
    "loss-curves.png",
    "normal-samples.png",
    "prior-samples.png",
    "rate-distortion.png",
    "reconstructions.png",
  ]);
  // Width and height from the PNG header (bytes 16-23): the manifold figure's layout is 760 x 760.
  const header = fs.readFileSync(path.join(dir, "png", "decoder-c1.png"));
  assert.deepEqual([header.readUInt32BE(16), header.readUInt32BE(20)], [760, 760]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("npm run bench writes consistent figures", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-bench-"));
  const file = path.join(dir, "bench.json");
  const run = runCli("bench.ts", ["--rows", "512", "--epochs", "3", "--out", file]);
  assert.equal(run.status, 0, run.stderr);
  const bench = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.equal(bench.epochSeconds.length, 3);
  // The median of epochs 2 and 3 (the first is a warm-up), scaled from 512 rows to 60,000.
  const median = (bench.epochSeconds[1] + bench.epochSeconds[2]) / 2;
  assert.ok(Math.abs(bench.medianEpochSeconds - median) < 1e-12);
  assert.ok(Math.abs(bench.secondsPer60kEpoch - (median * 60000) / 512) < 1e-9);
  assert.ok(Math.abs(bench.gflopPerSecond - (bench.samplesPerSecond * 4_032_512) / 1e9) < 1e-9);
  assert.ok(bench.manifoldBatchedMs > 0 && bench.manifoldOneByOneMs > 0);
  assert.match(run.stdout, /s per 60,000-row epoch/);
  fs.rmSync(dir, { recursive: true, force: true });
});
