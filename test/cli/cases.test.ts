/**
 * The command line as a new user meets it: one table of awkward inputs (flags, environment variables,
 * paths), each run as a real process and checked for its exit code, a message that names the problem
 * and the fix without a stack trace, a time limit (nothing spins or waits), and, for every refusal, a
 * cache folder and a results folder left exactly as they were.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { DEFAULT_IDX_DIR, PROJECT_ROOT } from "../../src/vae/data";
import { hasIdxMnist, IDX_FILES, missingIdxFiles } from "../../src/vae/idx";

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "vae-cases-"));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** A regular file, a dangling symbolic link: things a mistyped path can point at. */
const FILE = path.join(scratch, "a-file");
const DANGLING = path.join(scratch, "dangling");
fs.writeFileSync(FILE, "not a folder\n");
fs.symlinkSync(path.join(scratch, "nowhere"), DANGLING);

/** Small enough that the few cases that train take a second or two. */
const TINY = [
  "--jobs",
  "1",
  "--epochs",
  "1",
  "--train-size",
  "256",
  "--test-size",
  "128",
  "--data",
  "embedded",
  "--coefficients",
  "0",
];

interface Case {
  readonly name: string;
  readonly script?: string;
  /** `CACHE` and `OUT` stand for the case's own cache and results folders. */
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly code: number;
  readonly message: RegExp;
  /** Seconds the whole command may take. Refusals come before training: a generous bound for a loaded machine. */
  readonly seconds?: number;
  /** True for the cases that are meant to train and write (the folders then change). */
  readonly writes?: boolean;
  readonly skip?: string | false;
}

const USAGE = 2;
const STORAGE = 1;
const cacheHint =
  /or use another cache folder \(--cache-dir DIR, VAE_CACHE_DIR in a notebook, cacheDir in runSweep\) or none \(--no-cache\)\. Nothing was trained\./;

const CASES: Case[] = [
  // Flags: each refused before anything loads, naming the flag as typed.
  {
    name: "a mistyped flag",
    args: ["--epoch", "3"],
    code: USAGE,
    message: /Unknown option '--epoch'\. Did you mean --epochs\? --help lists the options\./,
  },
  { name: "a positional argument", args: ["stray"], code: USAGE, message: /Unexpected argument 'stray'/ },
  {
    name: "zero epochs",
    args: ["--epochs", "0"],
    code: USAGE,
    message: /--epochs must be a whole number >= 1; got "0"/,
  },
  {
    name: "a fractional epoch count",
    args: ["--epochs", "1.5"],
    code: USAGE,
    message: /--epochs must be a whole number >= 1; got "1\.5"/,
  },
  {
    name: "a hexadecimal epoch count",
    args: ["--epochs", "0x10"],
    code: USAGE,
    message: /--epochs must be a whole number >= 1; got "0x10"/,
  },
  {
    name: "an empty coefficient list",
    args: ["--coefficients", ""],
    code: USAGE,
    message: /--coefficients needs at least one number, e\.g\. --coefficients 0,0\.5,1; got ""/,
  },
  {
    name: "a negative coefficient",
    args: ["--coefficients", "0,-1"],
    code: USAGE,
    message: /--coefficients: "-1" is not a decimal number >= 0 \(such as 0\.5 or 20\)/,
  },
  {
    name: "a word as a coefficient",
    args: ["--coefficients", "0,abc"],
    code: USAGE,
    message: /--coefficients: "abc" is not a decimal number >= 0/,
  },
  {
    name: "a hexadecimal coefficient",
    args: ["--coefficients", "0x10"],
    code: USAGE,
    message: /--coefficients: "0x10" is not a decimal number >= 0/,
  },
  {
    name: "a binary coefficient",
    args: ["--coefficients", "0b11"],
    code: USAGE,
    message: /--coefficients: "0b11" is not a decimal number >= 0/,
  },
  {
    name: "an infinite coefficient",
    args: ["--coefficients", "Infinity"],
    code: USAGE,
    message: /--coefficients: "Infinity" is not a decimal number >= 0/,
  },
  {
    name: "a coefficient that overflows",
    args: ["--coefficients", "1e400"],
    code: USAGE,
    message: /--coefficients: "1e400" is not a decimal number >= 0/,
  },
  {
    name: "a repeated coefficient",
    args: ["--coefficients", "1,0.5,1"],
    code: USAGE,
    message: /--coefficients repeats 1; give each value once\./,
  },
  {
    name: "an unknown data source",
    args: ["--data", "foo"],
    code: USAGE,
    message: /--data "foo" is not a data source; use auto, embedded or idx/,
  },
  {
    name: "an unknown backend",
    args: ["--backend", "foo"],
    code: USAGE,
    message: /Unknown backend "foo"; use one of: tensorflow, wasm, cpu/,
  },
  {
    name: "an unknown profile",
    args: ["--profile", "foo"],
    code: USAGE,
    message: /--profile "foo" is not a profile; use tutorial or quick/,
  },
  {
    name: "more embedded digits than there are",
    args: ["--train-size", "9000", "--test-size", "2000", "--data", "embedded"],
    code: USAGE,
    message:
      /--train-size \+ --test-size = 9000 \+ 2000 exceeds the 10000 embedded digits; lower them or use the full MNIST \(--data idx\)/,
  },
  {
    name: "a negative learning rate",
    args: ["--learning-rate=-1"],
    code: USAGE,
    message: /--learning-rate must be a decimal number > 0 \(such as 0\.001 or 1e-3\); got "-1"/,
  },
  {
    name: "a zero learning rate",
    args: ["--learning-rate", "0"],
    code: USAGE,
    message: /--learning-rate must be a decimal number > 0/,
  },
  {
    name: "a hexadecimal learning rate",
    args: ["--learning-rate", "0x1"],
    code: USAGE,
    message: /--learning-rate must be a decimal number > 0 \(such as 0\.001 or 1e-3\); got "0x1"/,
  },
  {
    name: "a negative seed",
    args: ["--seed", "-1"],
    code: USAGE,
    message: /--seed is followed by "-1", which reads as a flag, so --seed has no value\. .*--seed=-1/,
  },
  {
    name: "a negative seed, as a value",
    args: ["--seed=-1"],
    code: USAGE,
    message: /--seed must be a whole number >= 0; got "-1"/,
  },
  {
    name: "a fractional seed",
    args: ["--seed", "1.5"],
    code: USAGE,
    message: /--seed must be a whole number >= 0; got "1\.5"/,
  },
  {
    name: "a word as the test size",
    args: ["--test-size", "abc"],
    code: USAGE,
    message: /--test-size must be a whole number >= 1; got "abc"/,
  },
  {
    name: "zero training rows",
    args: ["--train-size", "0"],
    code: USAGE,
    message: /--train-size must be a whole number >= 1; got "0"/,
  },
  {
    name: "a word as --jobs",
    args: ["--jobs", "many"],
    code: USAGE,
    message: /--jobs must be a whole number >= 1; got "many"/,
  },
  { name: "zero jobs", args: ["--jobs", "0"], code: USAGE, message: /--jobs must be a whole number >= 1; got "0"/ },
  {
    name: "several jobs without the cache",
    args: ["--jobs", "2", "--no-cache"],
    code: USAGE,
    message: /--jobs needs the cache: the processes hand results over through it\./,
  },
  // Environment variables: the same exit code and message shape as the flags they mirror.
  {
    name: "VAE_PROFILE unknown",
    args: [],
    env: { VAE_PROFILE: "fast" },
    code: USAGE,
    message: /VAE_PROFILE="fast" is not a profile; use one of: tutorial, quick/,
  },
  {
    name: "VAE_BACKEND unknown",
    args: [],
    env: { VAE_BACKEND: "bogus" },
    code: USAGE,
    message: /VAE_BACKEND="bogus": Unknown backend "bogus"; use one of: tensorflow, wasm, cpu/,
  },
  {
    name: "VAE_WASM_THREADS not a number",
    args: [],
    env: { VAE_WASM_THREADS: "abc" },
    code: USAGE,
    message: /VAE_WASM_THREADS must be a whole number from 1 to 64 \(1 turns threads off\); got "abc"/,
  },
  {
    name: "VAE_WASM_FMA not 0 or 1",
    args: [],
    env: { VAE_WASM_FMA: "7" },
    code: USAGE,
    message: /VAE_WASM_FMA must be 0 \(separate multiplies and adds\) or 1/,
  },
  {
    name: "VAE_FUSED_GRADIENTS not 0 or 1",
    args: [],
    env: { VAE_FUSED_GRADIENTS: "maybe" },
    code: USAGE,
    message: /VAE_FUSED_GRADIENTS must be 0 \(tfjs's automatic differentiation\) or 1/,
  },
  // Results folders: refused by path, cause and fix before anything trains, so nothing can be lost.
  {
    name: "--out naming an existing file, without the cache",
    args: [...TINY, "--out", FILE, "--no-cache"],
    code: STORAGE,
    message: new RegExp(
      `Cannot use ${FILE} as the results folder \\(--out\\): a file stands where a folder is needed \\(ENOTDIR\\)\\. Move that file away, or name another results folder with --out DIR\\. Nothing was trained\\.`,
    ),
  },
  {
    name: "--out under /proc",
    args: [...TINY, "--out", "/proc/vae-results"],
    code: STORAGE,
    message:
      /Cannot use \/proc\/vae-results as the results folder \(--out\): this file system refuses new folders \(such as \/proc\) \(ENOENT\)\./,
  },
  {
    name: "--out deep under /proc",
    args: [...TINY, "--out", "/proc/self/a/b"],
    code: STORAGE,
    message:
      /Cannot use \/proc\/self\/a\/b as the results folder \(--out\): .*\((ENOENT|EACCES|EPERM) at \/proc\/self\/a\)/,
  },
  {
    name: "--out through a file",
    args: [...TINY, "--out", path.join(FILE, "results")],
    code: STORAGE,
    message: new RegExp(`a file stands where a folder is needed \\(ENOTDIR at ${FILE}\\)`),
  },
  {
    name: "--out through a dangling link",
    args: [...TINY, "--out", path.join(DANGLING, "results")],
    code: STORAGE,
    message: new RegExp(`a symbolic link to a place that does not exist \\(ENOENT at ${DANGLING}\\)`),
  },
  // Cache folders: the same, named as the cache, with the cache's own advice.
  {
    name: "--cache-dir under /proc",
    args: [...TINY, "--cache-dir", "/proc/vae-cache"],
    code: STORAGE,
    message: new RegExp(
      `Cannot use /proc/vae-cache/[0-9a-f]{16} as the cache folder: this file system refuses new folders \\(such as /proc\\) \\(ENOENT at /proc/vae-cache\\)\\. .*${cacheHint.source}`,
    ),
  },
  {
    name: "--cache-dir naming a file",
    args: [...TINY, "--cache-dir", FILE],
    code: STORAGE,
    message: new RegExp(
      `a file stands where a folder is needed \\(ENOTDIR at ${FILE}\\)\\. Move that file away, ${cacheHint.source}`,
    ),
  },
  {
    name: "--cache-dir through a dangling link",
    args: [...TINY, "--cache-dir", DANGLING],
    code: STORAGE,
    message: new RegExp(`a symbolic link to a place that does not exist \\(ENOENT at ${DANGLING}\\)`),
  },
  {
    name: "--cache-dir through a file",
    args: [...TINY, "--cache-dir", path.join(FILE, "cache")],
    code: STORAGE,
    message: new RegExp(`\\(ENOTDIR at ${FILE}\\)`),
  },
  // Data: the full MNIST asked for but absent, named with the remedy.
  {
    name: "--data idx without the files",
    skip: hasIdxMnist(DEFAULT_IDX_DIR) && "the full MNIST is in data/mnist here",
    args: [...TINY.slice(0, -4), "--data", "idx", "--coefficients", "0"],
    code: STORAGE,
    message:
      /data\/mnist\/train-images-idx3-ubyte\(\.gz\) is missing; run `npm run fetch-mnist` or use the embedded data/,
  },
  // The other commands that write.
  {
    name: "fetch-mnist with a bad address",
    script: "fetchMnist.ts",
    args: ["--base-url", "not a url"],
    code: USAGE,
    message: /--base-url "not a url" is not a URL/,
  },
  {
    name: "fetch-mnist into a file",
    script: "fetchMnist.ts",
    args: ["--dir", path.join(FILE, "mnist")],
    code: STORAGE,
    message: new RegExp(
      `a file stands where a folder is needed \\(ENOTDIR at ${FILE}\\)\\. Move that file away, or choose another folder with --dir DIR`,
    ),
  },
  {
    name: "fetch-mnist under /proc",
    script: "fetchMnist.ts",
    args: ["--dir", "/proc/vae-mnist"],
    code: STORAGE,
    message: /Cannot write \/proc\/vae-mnist: no such file or folder \(ENOENT\)/,
  },
  {
    name: "report into a folder",
    script: "report.ts",
    args: [...TINY, "--out", scratch],
    code: USAGE,
    message: /--out .* is a folder; name the HTML file to write, e\.g\. --out .*report\.html/,
  },
  {
    name: "report under /proc",
    script: "report.ts",
    args: [...TINY, "--out", "/proc/vae/report.html"],
    code: STORAGE,
    message: /Cannot use \/proc\/vae as the report's folder \(--out\)/,
  },
  {
    name: "figures into a file",
    script: "figures.ts",
    args: [...TINY, "--out", FILE],
    code: STORAGE,
    message: /as the figures folder \(--out\): a file stands where a folder is needed \(ENOTDIR\)/,
  },
  {
    name: "notebooks under /proc",
    script: "notebooks.ts",
    args: ["--out", "/proc/vae-notebooks"],
    code: STORAGE,
    message: /Cannot use \/proc\/vae-notebooks as the executed notebooks' folder \(--out\)/,
  },
  {
    name: "notebooks: an unknown notebook",
    script: "notebooks.ts",
    args: ["nosuch"],
    code: USAGE,
    message: /No notebook "nosuch" in .*; there are: 01-normal-samples, 02-model, 03-kl-sweep, 04-analysis/,
  },
  // Accepted, with what was done about it said.
  { name: "--help", args: ["--help"], code: 0, message: /--coefficients LIST/ },
  {
    name: "--jobs above the cores, capped",
    args: [...TINY.slice(2), "--jobs", "99"],
    code: 0,
    message: new RegExp(
      `--jobs 99: this machine has ${os.cpus().length} cores?, so ${os.cpus().length} process(es)? at most\\.`,
    ),
    seconds: 240,
    writes: true,
  },
];

/** Every file under `dir` with its bytes, to tell "unchanged" exactly. */
function snapshot(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .sort()
    .map((name) => {
      const file = path.join(dir, name);
      return fs.lstatSync(file).isFile() ? `${name}:${fs.readFileSync(file).toString("base64")}` : `${name}/`;
    });
}

function run(script: string, args: string[], env: Record<string, string>, seconds: number) {
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; seconds: number }>(
    (resolve) => {
      const started = performance.now();
      const child = spawn(
        process.execPath,
        ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", script), ...args],
        {
          cwd: PROJECT_ROOT,
          env: { ...process.env, VAE_PROFILE: "quick", ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      child.stderr.on("data", (chunk) => (stderr += chunk));
      // A command that spins is stopped at twice its bound, and fails the case.
      const timer = setTimeout(() => child.kill("SIGKILL"), 2000 * seconds);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
      });
    },
  );
}

// Three at a time: each case is a Node process loading TypeScript, about a second of one core.
describe("the command line, case by case", { concurrency: 3 }, () => {
  CASES.forEach((c, i) => {
    const script = c.script ?? "sweep.ts";
    test(`${script.replace(".ts", "")}: ${c.name} -> exit ${c.code}`, { skip: c.skip }, async (t) => {
      const cacheDir = fs.mkdtempSync(path.join(scratch, `cache-${i}-`));
      const outDir = fs.mkdtempSync(path.join(scratch, `out-${i}-`));
      // Folders as a user's would be: something in them already.
      fs.writeFileSync(path.join(cacheDir, "earlier.txt"), "kept\n");
      fs.writeFileSync(path.join(outDir, "earlier.txt"), "kept\n");
      const folderFlags =
        script === "sweep.ts" && !c.args.includes("--cache-dir") && !c.args.includes("--no-cache")
          ? ["--cache-dir", cacheDir]
          : [];
      const outFlags = script === "sweep.ts" && !c.args.includes("--out") ? ["--out", outDir] : [];
      const before = [snapshot(cacheDir), snapshot(outDir)];
      // Unloaded, a refusal takes 1-2 s (mostly starting Node and TypeScript); the bound is for a CI
      // machine shared with other tests, and what it catches is a command that spins or waits forever.
      const seconds = c.seconds ?? 120;
      const result = await run(script, [...c.args, ...folderFlags, ...outFlags], c.env ?? {}, seconds);
      const message = c.code === 0 ? result.stdout : result.stderr;
      t.diagnostic(
        `exit ${result.code} in ${result.seconds.toFixed(1)} s: ${(c.code === 0 ? message.split("\n")[0] : message.split("\n").find((l) => l.startsWith("error: "))) ?? message}`,
      );
      assert.equal(result.signal, null, `ended by ${result.signal}: it did not finish within ${2 * seconds} s`);
      assert.equal(result.code, c.code, `${result.stderr}\n${result.stdout}`);
      assert.match(message, c.message);
      assert.doesNotMatch(`${result.stderr}\n${result.stdout}`, /\n\s+at /, "no stack trace");
      assert.ok(result.seconds < seconds, `took ${result.seconds.toFixed(1)} s, over the ${seconds} s bound`);
      if (c.code !== 0) assert.match(result.stderr, /^error: /m, "the message is the command's own");
      if (!c.writes)
        assert.deepEqual([snapshot(cacheDir), snapshot(outDir)], before, "the cache and results folders are unchanged");
      else assert.ok(fs.existsSync(path.join(outDir, "latest.json")), "the results were written");
    });
  });
});

test("the table holds at least 40 cases", () => assert.ok(CASES.length >= 40, `${CASES.length} cases`));

test("--data auto names the IDX files that are missing", () => {
  const dir = fs.mkdtempSync(path.join(scratch, "idx-"));
  fs.writeFileSync(path.join(dir, IDX_FILES.trainImages), "");
  fs.writeFileSync(path.join(dir, `${IDX_FILES.trainLabels}.gz`), "");
  fs.writeFileSync(path.join(dir, IDX_FILES.testImages), "");
  assert.deepEqual(missingIdxFiles(dir), [path.join(dir, "t10k-labels-idx1-ubyte")]);
  assert.equal(missingIdxFiles(path.join(dir, "absent")).length, 4);
});
