/**
 * Fuzzing the IDX loader: thousands of seeded mutations of a valid set of four files (bit flips,
 * truncations of every length class, random headers, huge claimed sizes, bytes appended, gzip damage
 * and gzip bombs, labels that are not digits, other counts and shapes), each read through `loadMnist`.
 * Each must load data equal to the files read by hand, or be refused with an `IdxError`; none may
 * crash, hang, or allocate from a header's claim (the cases run under an address-space limit that a
 * 1.6 GB allocation breaks, checked by a control allocation).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { buildSync } from "esbuild";
import type { Report } from "./idxFuzzRun";

const CASES = 2400;
const SEED = 20261202;
const HEADROOM_KB = 512 * 1024;

const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-idx-fuzz-"));
after(() => fs.rmSync(workdir, { recursive: true, force: true }));

/** Runs the bundled fuzzer in plain Node (no tsx, whose WebAssembly reserves gigabytes of address space). */
function runBundle(bundle: string, args: string[], limitKb?: number) {
  const command = limitKb === undefined ? 'exec "$0" "$@"' : `ulimit -v ${limitKb} && exec "$0" "$@"`;
  const result = spawnSync("/bin/sh", ["-c", command, process.execPath, bundle, ...args], {
    encoding: "utf8",
    timeout: 180_000,
  });
  assert.equal(result.error, undefined, `the fuzzer did not finish: ${result.error?.message}`);
  assert.equal(result.status, 0, `the fuzzer crashed (signal ${result.signal}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split("\n").pop() as string);
}

test(`${CASES} mutated IDX files load valid data or are refused by name; no crash, no hang, no allocation from a claim`, (t) => {
  const bundle = path.join(workdir, "idxFuzzRun.js");
  buildSync({
    entryPoints: [path.join(__dirname, "idxFuzzRun.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile: bundle,
    external: ["mnist"],
    logLevel: "warning",
  });
  const { vmSizeKb } = runBundle(bundle, ["--probe"]) as { vmSizeKb: number };
  const limitKb = vmSizeKb + HEADROOM_KB;
  const started = performance.now();
  const report = runBundle(bundle, [workdir, String(SEED), String(CASES)], limitKb) as Report;
  const seconds = (performance.now() - started) / 1000;

  const lines = [
    `IDX fuzz: ${report.cases} cases in ${seconds.toFixed(1)} s under an address-space limit of ${(limitKb / 1024).toFixed(0)} MB (the process alone: ${(vmSizeKb / 1024).toFixed(0)} MB)`,
    ...Object.entries(report.byOutcome)
      .sort((a, b) => b[1] - a[1])
      .map(([outcome, n]) => `  ${String(n).padStart(5)}  ${outcome}`),
    "by mutation:",
    ...Object.entries(report.byMutation).map(
      ([kind, outcomes]) =>
        `  ${kind}: ${Object.entries(outcomes)
          .map(([o, n]) => `${n} ${o.replace(/^refused: /, "")}`)
          .join(", ")}`,
    ),
    `2^31 x 28 x 28 claimed in 100 bytes: raw ${report.claim.raw.outcome} in ${report.claim.raw.milliseconds.toFixed(2)} ms, gzipped ${report.claim.gzipped.outcome} in ${report.claim.gzipped.milliseconds.toFixed(2)} ms`,
    `slowest case ${report.maxMilliseconds.toFixed(1)} ms (${report.slowest}); peak resident ${(report.vmHwmKb / 1024).toFixed(0)} MB, peak address space ${(report.vmPeakKb / 1024).toFixed(0)} MB`,
    `control, allocating a 2^21 x 28 x 28 claim under the limit: ${report.control}`,
  ];
  for (const line of lines) t.diagnostic(line);

  assert.ok(report.cases >= 2000, `${report.cases} cases`);
  assert.deepEqual(report.problems, [], "no crash and no load that differs from the files");
  assert.match(
    report.control,
    /^refused: .*allocation failed/i,
    "the limit breaks any allocation of a large claim, so the cases above were checked under it",
  );
  assert.equal(report.claim.raw.outcome, "refused: body shorter than the header's claim");
  assert.equal(report.claim.gzipped.outcome, "refused: claim beyond what the gzip stream can hold");
  // Failing fast: no reading or allocating of what the header claims; generous bounds for a loaded machine.
  assert.ok(
    report.claim.raw.milliseconds < 200 && report.claim.gzipped.milliseconds < 200,
    "the 2^31 claim fails at once",
  );
  assert.ok(report.maxMilliseconds < 2000, `no case near a hang (slowest ${report.maxMilliseconds.toFixed(0)} ms)`);
  assert.ok(report.vmHwmKb < 400 * 1024, `peak resident memory ${(report.vmHwmKb / 1024).toFixed(0)} MB`);
  // The mutations reach every check: loads (harmless flips of pixels, two gzip members) and each refusal.
  const outcomes = Object.keys(report.byOutcome);
  for (const expected of [
    "loaded",
    "refused: wrong magic number",
    "refused: wrong rank",
    "refused: body shorter than the header's claim",
    "refused: bytes after the body",
    "refused: gzip damage",
    "refused: gzip stream longer than the claim",
    "refused: claim beyond what the gzip stream can hold",
    "refused: label not a digit",
    "refused: image and label counts differ",
    "refused: image shape not N x 28 x 28",
  ]) {
    assert.ok(outcomes.includes(expected), `some case ends "${expected}"`);
  }
  for (const [kind, perKind] of Object.entries(report.byMutation)) {
    assert.ok(Object.values(perKind).reduce((a, b) => a + b, 0) >= 100, `${kind}: at least 100 cases`);
  }
});
