/**
 * Repeated kills: a quick sweep killed with SIGKILL at 20 seeded moments (inside a cache write, between
 * two cache files, right after an entry is complete, between coefficients, while a lock is being made,
 * during training, at a random time), with one process and with two (`--jobs 2`), and restarted each
 * time. After every kill, whatever is on disk must be whole (entries and results read back); at the end
 * of each sweep, the results and every cached blob must be bit-identical to an uninterrupted run's,
 * with no temporary file or lock left over.
 *
 * Moments inside a write last milliseconds; the run kills itself there (`VAE_CRASH_AT`, a real SIGKILL
 * at a named point). Training and random moments are killed from outside.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { EntryStore } from "../../src/experiment/cache";
import { readResults } from "../../src/experiment/results";
import { CRASH_ENV } from "../../src/system/crashPoint";
import { PROJECT_ROOT } from "../../src/vae/data";
import { Random } from "../../src/vae/random";

const KILLS = 20;
const SEED = 15;
const SWEEP = [
  "--epochs",
  "1",
  "--train-size",
  "256",
  "--test-size",
  "128",
  "--coefficients",
  "0,1,2",
  "--data",
  "embedded",
];
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-kills-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Moment {
  readonly label: string;
  /** A crash point, `POINT:N`, for the run to kill itself at. */
  readonly crashAt?: string;
  /** Killed from outside this many milliseconds after the first coefficient's training starts. */
  readonly afterTrainingStartsMs?: number;
  /** Killed from outside this many milliseconds after the start. */
  readonly afterStartMs?: number;
}

/** A seeded moment: one of the five named points (with which visit), during training, or at a random time. */
function drawMoment(random: Random): Moment {
  const nth = (most: number) => 1 + random.int(most);
  switch (random.int(7)) {
    case 0: {
      const at = `file-temporary-written:${nth(12)}`;
      return { label: `inside a cache write (${at})`, crashAt: at };
    }
    case 1: {
      const at = `file-renamed:${nth(12)}`;
      return { label: `between two cache files (${at})`, crashAt: at };
    }
    case 2: {
      const at = `entry-written:${nth(3)}`;
      return { label: `entry complete, lock held (${at})`, crashAt: at };
    }
    case 3: {
      const at = `coefficient-done:${nth(2)}`;
      return { label: `between coefficients (${at})`, crashAt: at };
    }
    case 4: {
      const at = `lock-temporary-written:${nth(3)}`;
      return { label: `while making a lock (${at})`, crashAt: at };
    }
    case 5: {
      const ms = random.int(60);
      return { label: `during training (+${ms} ms)`, afterTrainingStartsMs: ms };
    }
    default: {
      const ms = 300 + random.int(2500);
      return { label: `at a random time (+${ms} ms)`, afterStartMs: ms };
    }
  }
}

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Runs the sweep in its own process group, killing it at the moment given; after the main process
 * dies, the whole group is killed, as a killed terminal or service would take its worker with it.
 */
function runSweepCommand(args: string[], moment?: Moment): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", "sweep.ts"), ...args],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...(moment?.crashAt ? { [CRASH_ENV]: moment.crashAt } : {}) },
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      },
    );
    const killGroup = () => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // The group has already ended.
      }
    };
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    if (moment?.afterStartMs !== undefined) timer = setTimeout(killGroup, moment.afterStartMs);
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      if (moment?.afterTrainingStartsMs !== undefined && !timer && /KL coefficient [\d.]+: training\n/.test(stderr))
        timer = setTimeout(killGroup, moment.afterTrainingStartsMs);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      killGroup();
      resolve({ code, signal, stderr });
    });
  });
}

/** The flags putting a sweep's cache and results in `dir`. */
const folders = (dir: string) => ["--cache-dir", path.join(dir, "cache"), "--out", path.join(dir, "out")];

function filesUnder(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort() : [];
}

/** Every blob of the cache (its key folder included in the name) and its bytes. */
function blobs(cacheDir: string): Map<string, Buffer> {
  return new Map(
    filesUnder(cacheDir)
      .filter((f) => f.endsWith(".f32"))
      .map((f) => [f, fs.readFileSync(path.join(cacheDir, f))]),
  );
}

/** The results without what differs between any two runs: times, dates, whether loaded from the cache. */
function deterministicResults(outDir: string) {
  const results = readResults(path.join(outDir, "latest.json"));
  return {
    key: results.key,
    coefficients: results.coefficients.map((c) => ({
      klCoefficient: c.klCoefficient,
      test: c.test,
      metrics: c.metrics,
      history: c.history.map(({ train, test }) => ({ train, test })),
    })),
  };
}

/** What a kill may leave must still be whole: every results file and every entry that exists reads back. */
function assertWholeAfterKill(cacheDir: string, outDir: string, label: string): void {
  for (const file of filesUnder(outDir).filter((f) => f.endsWith(".json"))) readResults(path.join(outDir, file));
  for (const file of filesUnder(cacheDir).filter((f) => f.endsWith(".json"))) {
    const store = new EntryStore(path.join(cacheDir, path.dirname(file)));
    assert.ok(store.read(path.basename(file, ".json")), `${label}: ${file} reads back`);
  }
}

test(`a quick sweep killed ${KILLS} times at seeded moments, with one process and two, ends bit-identical to an uninterrupted run`, async (t) => {
  const referenceDir = path.join(root, "reference");
  const reference = await runSweepCommand([...SWEEP, "--jobs", "1", ...folders(referenceDir)]);
  assert.equal(reference.code, 0, reference.stderr);
  const referenceBlobs = blobs(path.join(referenceDir, "cache"));
  const referenceResults = deterministicResults(path.join(referenceDir, "out"));
  assert.equal(referenceBlobs.size, 9, "three coefficients of three blobs each");

  const random = new Random(SEED);
  const log: string[] = [];
  let kills = 0;
  let attempts = 0;
  let sweeps = 0;
  let runsInSweep = 0;
  let jobs = 1;
  let dir = "";
  const startSweep = () => {
    sweeps++;
    runsInSweep = 0;
    jobs = sweeps % 2 === 1 ? 1 : 2;
    dir = path.join(root, `sweep-${sweeps}`);
  };
  const finishSweep = () => {
    assert.deepEqual(
      deterministicResults(path.join(dir, "out")),
      referenceResults,
      `sweep ${sweeps}: the same results as the uninterrupted run`,
    );
    const finalBlobs = blobs(path.join(dir, "cache"));
    assert.deepEqual([...finalBlobs.keys()], [...referenceBlobs.keys()], `sweep ${sweeps}: the same blobs`);
    for (const [name, bytes] of referenceBlobs)
      assert.ok(bytes.equals(finalBlobs.get(name) as Buffer), `sweep ${sweeps}: ${name} is bit-identical`);
    assert.deepEqual(
      filesUnder(dir).filter((f) => f.endsWith(".tmp") || f.endsWith(".lock")),
      [],
      `sweep ${sweeps}: no temporary file or lock is left`,
    );
    log.push(
      `sweep ${sweeps} (--jobs ${jobs}): complete after ${runsInSweep} runs, results and ${finalBlobs.size} blobs bit-identical, nothing left over`,
    );
  };
  startSweep();
  while (kills < KILLS) {
    attempts++;
    assert.ok(attempts <= 4 * KILLS, `${kills} kills after ${attempts - 1} runs: moments keep missing`);
    const moment = drawMoment(random);
    runsInSweep++;
    const outcome = await runSweepCommand([...SWEEP, "--jobs", String(jobs), ...folders(dir)], moment);
    const workerKilled = /Sweep worker \d+ failed \(code null\)/.test(outcome.stderr);
    if (outcome.signal === "SIGKILL") {
      kills++;
      assertWholeAfterKill(path.join(dir, "cache"), path.join(dir, "out"), moment.label);
      log.push(`kill ${kills}: --jobs ${jobs}, ${moment.label}: killed; what is on disk reads back`);
    } else {
      assert.equal(outcome.code, 0, `${moment.label}: ${outcome.stderr}`);
      if (workerKilled) {
        kills++;
        log.push(`kill ${kills}: --jobs ${jobs}, ${moment.label}: the worker was killed, the sweep went on`);
      } else {
        log.push(`(run missed its moment, ${moment.label}: the sweep finished first)`);
      }
      finishSweep();
      startSweep();
    }
  }
  if (runsInSweep > 0) {
    // The last sweep was killed: one more run, uninterrupted, finishes it.
    runsInSweep++;
    const outcome = await runSweepCommand([...SWEEP, "--jobs", String(jobs), ...folders(dir)]);
    assert.equal(outcome.code, 0, outcome.stderr);
    finishSweep();
  }
  for (const line of log) t.diagnostic(line);
  t.diagnostic(`${kills} kills survived in ${attempts} runs over ${sweeps} sweeps`);
  assert.equal(kills, KILLS);
});
