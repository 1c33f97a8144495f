/**
 * `npm run bench -- [options]`: times training of the tutorial's VAE on the active backend and writes
 * the figures as JSON (default build/bench/bench.json).
 * - `--pytorch`: the same model in PyTorch too, one epoch each in turn, so both see the same load.
 * - `--sweep`: the tutorial's sweep and the PyTorch twin's, as commands with as many processes; wall times.
 * - `--full-mnist`: coefficients on 60,000 digits (tiled IDX files), projected to the whole sweep.
 * - `--anchors`: one epoch each of this backend, the other of wasm and tfjs-node, PyTorch and Keras 3.
 */
import { option, OPTIONS } from "../system/options";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { describeBackend, initBackend, type BackendInfo } from "../backend/select";
import { WASM_THREADS_ENV } from "../backend/wasmThreads";
import { writeFileAtomic } from "../experiment/cache";
import { autoSweepJobs } from "../experiment/workers";
import { TUTORIAL_CONFIG } from "../vae/config";
import { loadMnist, PROJECT_ROOT } from "../vae/data";
import {
  benchConfig,
  benchTraining,
  formatBench,
  median,
  pairedRatio,
  projectSweepSeconds,
  writeTiledMnist,
} from "../experiment/bench";
import { defaultPythonEnvDir, pythonEnvBin } from "../system/pythonEnv";
import { parseBackendFlag, parseFlags, parseInteger, runMain, UsageError } from "./args";

const USAGE = `usage: npm run bench -- [options]

  --backend NAME     tensorflow | wasm | cpu (default: the first that loads; also VAE_BACKEND)
  --epochs N         epochs to time (default 4; the first is a warm-up)
  --rows N           training rows from the embedded digits (default 8000)
  --out FILE         JSON output (default build/bench/bench.json)
  --pytorch          also time the same model in PyTorch (python3 bench/pytorch_reference.py),
                     its epochs alternating with these
  --anchors          time four systems side by side, one epoch of each in turn: wasm, tfjs-node's
                     tensorflow (npm run setup-tfjs-node), PyTorch and Keras 3 on TensorFlow
                     (the Python ones from build/python: npm run python-env -- bench)
  --sweep            also time the tutorial's sweep here and in PyTorch, side by side
  --sweep-epochs N   epochs per coefficient for --sweep (default 40, the tutorial's; fewer time a
                     fraction of it, and the projection scales it up)
  --repeat N         run each sweep N times, alternately (default 1)
  --jobs N|auto      processes per sweep, the same for both (default auto, as npm run sweep)
  --full-mnist       time coefficients on 60,000 tiled digits, one per process, and project the sweep
  --full-epochs N    epochs per coefficient for --full-mnist (default 2)`;

const TUTORIAL_EPOCHS = TUTORIAL_CONFIG.epochs;
const COEFFICIENTS = TUTORIAL_CONFIG.klCoefficients.length;

/**
 * The first Python that imports `modules`: $PYTHON, the project's environment (npm run python-env --
 * bench), python3 on the PATH, Debian's.
 */
function findPython(modules = "torch"): string {
  const candidates = [
    option("python"),
    path.join(pythonEnvBin(defaultPythonEnvDir(PROJECT_ROOT)), "python"),
    "python3",
    "/usr/bin/python3",
  ].filter((p): p is string => Boolean(p));
  const python = candidates.find((candidate) => spawnSync(candidate, ["-c", `import ${modules}`]).status === 0);
  if (!python)
    throw new UsageError(
      `The Python references need a python with ${modules}: ` +
        "npm run python-env -- bench installs them into build/python (or set PYTHON).",
    );
  return python;
}

const REFERENCE = path.join(PROJECT_ROOT, "bench", "pytorch_reference.py");
const KERAS_REFERENCE = path.join(PROJECT_ROOT, "bench", "keras_reference.py");
const EPOCH_SERVER = path.join(PROJECT_ROOT, "src", "cli", "benchEpochServer.ts");

/**
 * Another system's training, one epoch per request (`--serve`, or the bench's own epoch server for a
 * second backend): started once, asked between this backend's epochs.
 */
class EpochServer {
  private readonly child;
  private readonly lines: AsyncIterableIterator<string>;
  readonly seconds: number[] = [];
  readonly cpuSeconds: number[] = [];
  framework = "";

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  static pytorch(python: string, rows: number): EpochServer {
    return new EpochServer("pytorch", python, [REFERENCE, "--serve", "--rows", String(rows)]);
  }

  private async next(): Promise<Record<string, unknown>> {
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done) throw new Error(`The ${this.name} reference stopped early (its error is above).`);
      // Libraries may print their own lines; the answers are JSON objects.
      if (value.startsWith("{")) return JSON.parse(value) as Record<string, unknown>;
    }
  }

  async start(): Promise<void> {
    this.framework = (await this.next()).framework as string;
  }

  async epoch(): Promise<void> {
    this.child.stdin.write("epoch\n");
    const answer = await this.next();
    this.seconds.push(answer.seconds as number);
    this.cpuSeconds.push(answer.cpuSeconds as number);
  }

  stop(): void {
    this.child.stdin.end();
  }
}

/** Every system's epochs from one side-by-side run, as seconds per 60,000-row epoch and as ratios to PyTorch's. */
function anchorTable(
  result: Awaited<ReturnType<typeof benchTraining>>,
  backend: BackendInfo,
  others: readonly EpochServer[],
  reference: EpochServer,
  rows: number,
) {
  const per60k = (seconds: readonly number[]) => (median(seconds.slice(seconds.length > 1 ? 1 : 0)) * 60_000) / rows;
  const here = {
    system: result.backend,
    framework: describeBackend(backend),
    epochSeconds: result.epochSeconds,
    epochCpuSeconds: result.epochCpuSeconds,
  };
  const systems = [
    here,
    ...others.map((other) => ({
      system: other.name,
      framework: other.framework,
      epochSeconds: other.seconds,
      epochCpuSeconds: other.cpuSeconds,
    })),
  ];
  return {
    rows,
    rounds: result.epochSeconds.length,
    order: systems.map((system) => system.system),
    systems: systems.map((system) => ({
      ...system,
      secondsPer60kEpoch: per60k(system.epochSeconds),
      ratioToPytorch: pairedRatio(system.epochSeconds, reference.seconds),
    })),
  };
}

/** Runs a command to its end and returns its wall time (start to exit, as a user waits) and output. */
function timeCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ seconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve({ seconds: (performance.now() - started) / 1000, stdout });
      else
        reject(
          new Error(
            `${path.basename(args[args.length > 2 ? 2 : 0] ?? command)} failed (code ${code}): ` +
              stderr.trim().split("\n").slice(-5).join("\n"),
          ),
        );
    });
  });
}

async function sweepSideBySide(options: {
  backend: BackendInfo;
  backendFlag?: string;
  jobs: number;
  epochs: number;
  repeat: number;
  python: string;
}) {
  const { jobs, epochs, repeat, python } = options;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "vae-bench-sweep-"));
  const project: number[] = [];
  const pytorch: number[] = [];
  // Every epoch's seconds (training and the test evaluation) of every coefficient, per round.
  const projectEpochs: number[][] = [];
  const pytorchEpochs: number[][] = [];
  try {
    for (let round = 1; round <= repeat; round++) {
      // A fresh cache each time, so that every coefficient is trained.
      const cacheDir = path.join(scratch, `cache-${round}`);
      const projectArgs = [
        "--import",
        "tsx",
        path.join(PROJECT_ROOT, "src", "cli", "sweep.ts"),
        "--data",
        "embedded",
        "--epochs",
        String(epochs),
        "--jobs",
        String(jobs),
        "--cache-dir",
        cacheDir,
        "--out",
        path.join(scratch, "results"),
      ];
      if (options.backendFlag) projectArgs.push("--backend", options.backendFlag);
      const mine = await timeCommand(process.execPath, projectArgs);
      const results = JSON.parse(fs.readFileSync(path.join(scratch, "results", "latest.json"), "utf8")) as {
        coefficients: { history: { seconds: number }[] }[];
      };
      project.push(mine.seconds);
      projectEpochs.push(results.coefficients.flatMap((run) => run.history.map((record) => record.seconds)));
      console.log(`sweep ${round}/${repeat}, this project: ${mine.seconds.toFixed(1)} s`);
      const theirs = await timeCommand(python, [
        REFERENCE,
        "--sweep",
        "--epochs",
        String(epochs),
        "--jobs",
        String(jobs),
        "--rows",
        "8000",
        "--test-rows",
        "2000",
      ]);
      const reference = JSON.parse(theirs.stdout.trim().split("\n").pop() as string) as {
        runs: { epochSeconds: number[] }[];
      };
      pytorch.push(theirs.seconds);
      pytorchEpochs.push(reference.runs.flatMap((run) => run.epochSeconds));
      console.log(`sweep ${round}/${repeat}, PyTorch: ${theirs.seconds.toFixed(1)} s`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  // Every sweep is a fresh set of processes: none is a warm-up.
  const ratio = pairedRatio(project, pytorch, false);
  // A part of the sweep scales to the whole by its epochs only: start-up, data, the decodes and the
  // metrics are paid once per sweep or coefficient whatever the epochs. Each process trains its share
  // of the epochs, so the epochs' part of the wall time is their sum over the processes.
  const project40 = project.map((wall, i) => projectSweepWall(wall, projectEpochs[i], jobs, epochs));
  const pytorch40 = pytorch.map((wall, i) => projectSweepWall(wall, pytorchEpochs[i], jobs, epochs));
  return {
    coefficients: COEFFICIENTS,
    epochs,
    jobs,
    fractionOfTutorialSweep: epochs / TUTORIAL_EPOCHS,
    projectWallSeconds: project,
    pytorchWallSeconds: pytorch,
    // Every round's pair was timed back to back; the ratio is the median of the pairs' ratios.
    ratio,
    projectedTutorialSeconds:
      epochs === TUTORIAL_EPOCHS
        ? undefined
        : { project: median(project40), pytorch: median(pytorch40), ratio: pairedRatio(project40, pytorch40, false) },
  };
}

/** A sweep's wall time with `epochs` epochs per coefficient scaled to the tutorial's 40, the rest kept. */
function projectSweepWall(wallSeconds: number, epochSeconds: readonly number[], jobs: number, epochs: number): number {
  const epochPart = epochSeconds.reduce((a, b) => a + b, 0) / jobs;
  return wallSeconds - epochPart + (epochPart * TUTORIAL_EPOCHS) / epochs;
}

interface FullMnistChild {
  klCoefficient: number;
  epochSeconds: number[];
  runSeconds: number;
}

/** Times `jobs` coefficients at once on 60,000 tiled digits, one process each, and projects the sweep. */
async function fullMnist(options: { backend: BackendInfo; jobs: number; epochs: number }) {
  const { backend, jobs, epochs } = options;
  const dir = writeTiledMnist(path.join(PROJECT_ROOT, "build", "bench", "mnist-tiled"));
  const coefficients = TUTORIAL_CONFIG.klCoefficients.slice(0, jobs);
  // As under npm run sweep: with several processes, each on one thread.
  const threads = jobs > 1 && option("wasmThreads") === undefined ? { [WASM_THREADS_ENV]: "1" } : {};
  const env = { ...process.env, [OPTIONS.backend.name]: backend.name, ...threads };
  const worker = path.join(PROJECT_ROOT, "src", "cli", "benchWorker.ts");
  const started = performance.now();
  const runs = await Promise.all(
    coefficients.map(
      async (c) =>
        JSON.parse(
          (await timeCommand(process.execPath, ["--import", "tsx", worker, dir, String(c), String(epochs)], env)).stdout
            .trim()
            .split("\n")
            .pop() as string,
        ) as FullMnistChild,
    ),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  // Each epoch (60,000 training rows and the 10,000-row test evaluation) after the first, which warms up.
  const epochSeconds = median(runs.flatMap((run) => run.epochSeconds.slice(epochs > 1 ? 1 : 0)));
  const tailSeconds = median(runs.map((run) => run.runSeconds - run.epochSeconds.reduce((a, b) => a + b, 0)));
  const projected = projectSweepSeconds({
    epochSeconds,
    epochs: TUTORIAL_EPOCHS,
    tailSeconds,
    coefficients: COEFFICIENTS,
    jobs,
  });
  return {
    trainRows: 60_000,
    testRows: 10_000,
    jobs,
    epochs,
    runs,
    wallSeconds,
    epochSeconds,
    coefficientSeconds: epochSeconds * TUTORIAL_EPOCHS + tailSeconds,
    projectedSweepSeconds: projected,
  };
}

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), {
    backend: { type: "string" },
    epochs: { type: "string" },
    rows: { type: "string" },
    out: { type: "string" },
    pytorch: { type: "boolean" },
    anchors: { type: "boolean" },
    sweep: { type: "boolean" },
    "sweep-epochs": { type: "string" },
    repeat: { type: "string" },
    jobs: { type: "string" },
    "full-mnist": { type: "boolean" },
    "full-epochs": { type: "string" },
    help: { type: "boolean" },
  } as const);
  if (values.help) return console.log(USAGE);
  const backendName = parseBackendFlag(values.backend);
  const epochs = parseInteger("epochs", values.epochs) ?? 4;
  const rows = parseInteger("rows", values.rows) ?? 8000;
  const sweepEpochs = parseInteger("sweep-epochs", values["sweep-epochs"]) ?? TUTORIAL_EPOCHS;
  const repeat = parseInteger("repeat", values.repeat) ?? 1;
  const fullEpochs = parseInteger("full-epochs", values["full-epochs"]) ?? 2;
  const jobsFlag = values.jobs === undefined || values.jobs === "auto" ? undefined : parseInteger("jobs", values.jobs);
  const python =
    values.pytorch || values.sweep || values.anchors
      ? findPython(values.anchors ? "torch, keras, tensorflow" : "torch")
      : undefined;
  const config = benchConfig(rows);
  const backend = await initBackend({ backend: backendName, quiet: true });
  console.log(describeBackend(backend));
  const data = loadMnist(config);

  let reference: EpochServer | undefined;
  const others: EpochServer[] = [];
  if (python && (values.pytorch || values.anchors)) {
    reference = EpochServer.pytorch(python, rows);
    others.push(reference);
  }
  if (python && values.anchors) {
    // The other of the two TensorFlow.js backends the project offers, in its own process.
    const second = backend.name === "tensorflow" ? "wasm" : "tensorflow";
    others.unshift(
      new EpochServer(second, process.execPath, ["--import", "tsx", EPOCH_SERVER, second, String(rows)], {
        ...process.env,
        TF_CPP_MIN_LOG_LEVEL: "2",
      }),
    );
    others.push(new EpochServer("keras", python, [KERAS_REFERENCE, "--serve", "--rows", String(rows)]));
  }
  for (const other of others) await other.start();
  // One epoch of each system in turn, so that every round sees the same load.
  const result = await benchTraining(config, data, backend, epochs, async () => {
    for (const other of others) await other.epoch();
    await new Promise((resolve) => setImmediate(resolve));
  });
  for (const other of others) other.stop();
  console.log(formatBench(result));

  let pytorch: Record<string, unknown> | undefined;
  if (reference) {
    const seconds = reference.seconds;
    const secondsPer60kEpoch = (median(seconds.slice(seconds.length > 1 ? 1 : 0)) * 60_000) / rows;
    const ratio = pairedRatio(result.epochSeconds, seconds);
    const cpuRatio = pairedRatio(result.epochCpuSeconds, reference.cpuSeconds);
    pytorch = {
      framework: reference.framework,
      rows,
      epochSeconds: seconds,
      epochCpuSeconds: reference.cpuSeconds,
      secondsPer60kEpoch,
      samplesPerSecond: 60_000 / secondsPer60kEpoch,
      ratio,
      cpuRatio,
    };
    console.log(
      `${reference.framework}: epoch seconds ${seconds.map((s) => s.toFixed(2)).join(", ")} ` +
        "(each right after this backend's), " +
        `${secondsPer60kEpoch.toFixed(1)} s per 60,000-row epoch`,
    );
    console.log(
      `per-epoch ratio: this backend takes ${ratio.toFixed(2)}x PyTorch's time ` +
        "(median of the epoch pairs' ratios, first pair left out)",
    );
    console.log(
      `CPU time ratio: ${cpuRatio.toFixed(2)}x ` +
        `(PyTorch CPU seconds ${reference.cpuSeconds.map((s) => s.toFixed(2)).join(", ")})`,
    );
  }

  const jobs = jobsFlag ?? autoSweepJobs(backend.name);
  let sweep: Awaited<ReturnType<typeof sweepSideBySide>> | undefined;
  if (python && values.sweep) {
    console.log(
      `sweep: ${COEFFICIENTS} coefficients x ${sweepEpochs} epochs on 8,000 digits (2,000 test), ` +
        `${jobs} process${jobs === 1 ? "" : "es"} each`,
    );
    sweep = await sweepSideBySide({ backend, backendFlag: values.backend, jobs, epochs: sweepEpochs, repeat, python });
    const fraction =
      sweepEpochs === TUTORIAL_EPOCHS ? "the whole sweep" : `${sweepEpochs}/${TUTORIAL_EPOCHS} of the sweep`;
    console.log(`sweep ratio (${fraction}): this project takes ${sweep.ratio.toFixed(2)}x PyTorch's wall time`);
    if (sweep.projectedTutorialSeconds) {
      const projected = sweep.projectedTutorialSeconds;
      console.log(
        `projected whole sweep (the epochs scaled to ${TUTORIAL_EPOCHS}, start-up and the rest kept): ` +
          `${projected.project.toFixed(0)} s here, ${projected.pytorch.toFixed(0)} s in PyTorch, ` +
          `ratio ${projected.ratio.toFixed(2)}`,
      );
    }
  }

  let full: Awaited<ReturnType<typeof fullMnist>> | undefined;
  if (values["full-mnist"]) {
    full = await fullMnist({ backend, jobs, epochs: fullEpochs });
    console.log(
      `full MNIST (60,000 tiled digits, ${jobs} coefficient${jobs === 1 ? "" : "s"} at once): ` +
        `${full.epochSeconds.toFixed(1)} s per epoch with the test evaluation; ` +
        `one coefficient of ${TUTORIAL_EPOCHS} epochs ${(full.coefficientSeconds / 60).toFixed(1)} min; ` +
        `the sweep projected at ${(full.projectedSweepSeconds / 60).toFixed(0)} min`,
    );
  }

  let anchors: ReturnType<typeof anchorTable> | undefined;
  if (values.anchors && reference) {
    anchors = anchorTable(result, backend, others, reference, rows);
    console.log(
      `side by side, one epoch of each in turn, ${rows} rows, batch ${config.batchSize} ` +
        "(seconds per 60,000-row epoch, median after the first round; " +
        "ratio to PyTorch: median of the rounds' ratios, first left out):",
    );
    for (const system of anchors.systems)
      console.log(
        `  ${system.system.padEnd(10)} ${system.secondsPer60kEpoch.toFixed(2).padStart(6)} s  ` +
          `${system.ratioToPytorch.toFixed(2)}x  ${system.framework}`,
      );
  }

  const file = path.resolve(values.out ?? path.join(PROJECT_ROOT, "build", "bench", "bench.json"));
  const ratios = {
    perEpoch: pytorch?.ratio,
    perEpochCpu: pytorch?.cpuRatio,
    sweep: sweep?.ratio,
    projectedWholeSweep: sweep?.projectedTutorialSeconds?.ratio,
  };
  const record = {
    createdAt: new Date().toISOString(),
    ...result,
    fma: backend.fma,
    ratios,
    pytorch,
    anchors,
    sweep,
    fullMnist: full,
  };
  writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`Written ${file}`);
}

if (require.main === module) runMain(main, USAGE);
