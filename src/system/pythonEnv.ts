/**
 * The project's own Python: a virtual environment under `build/python` (never the system's site-packages)
 * holding what the browser tests, `npm run lab` and the benchmark's anchors need. Packages come from the
 * index pip is configured with: where `pip config list` names local folders or `file://` indexes, they
 * replace the default index (which may be unreachable: pip would retry it for minutes before using them).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Setting up the Python environment or tfjs-node's binding failed: the message names the step and the fix. */
export class SetupError extends Error {
  override name = "SetupError";
}

/** The package groups, by what needs them. Versions are ranges: a user's own index may hold newer ones. */
export const PYTHON_GROUPS = {
  /** JupyterLab 4 and Notebook 7 (one server package each) with the Python kernel they expect. */
  jupyter: ["jupyterlab>=4,<5", "notebook>=7,<8", "ipykernel"],
  /** plotly's Python package: its wheel carries JupyterLab's renderer of `application/vnd.plotly.v1+json`. */
  plotly: ["plotly"],
  /** The benchmark's anchors: PyTorch, and the tutorial's own stack (Keras 3 on TensorFlow). */
  bench: ["torch", "tensorflow-cpu", "keras"],
  /** The TensorFlow C library that `@tensorflow/tfjs-node`'s binding is built against. */
  tensorflow: ["tensorflow-cpu"],
} as const satisfies Record<string, readonly string[]>;

export type PythonGroup = keyof typeof PYTHON_GROUPS;

export function defaultPythonEnvDir(projectRoot: string): string {
  return path.join(projectRoot, "build", "python");
}

/** The environment's executables folder (`bin`), where `python`, `pip` and `jupyter` live. */
export function pythonEnvBin(dir: string): string {
  return path.join(dir, "bin");
}

/**
 * pip's sources as command-line options: `--index-url`/`--extra-index-url`/`--find-links` from the local
 * (`file://` or folder) entries of `pip config list`, or nothing when pip is configured with no local
 * source (pip then uses its default index, as on any machine with a network).
 */
export function localPipSources(configList: string): string[] {
  const values = (key: string): string[] => {
    const found: string[] = [];
    for (const line of configList.split("\n")) {
      const match = /^[\w:.]*?\.?([\w-]+)='(.*)'$/.exec(line.trim());
      if (match && match[1] === key) found.push(...match[2].split(/\s+/).filter(Boolean));
    }
    return [...new Set(found)];
  };
  const isLocal = (source: string) => source.startsWith("file://") || source.startsWith("/");
  const indexes = [...values("index-url"), ...values("extra-index-url")].filter(isLocal);
  const links = values("find-links").filter(isLocal);
  if (indexes.length === 0 && links.length === 0) return [];
  const args: string[] = [];
  if (indexes.length === 0) args.push("--no-index");
  indexes.forEach((index, i) => args.push(i === 0 ? "--index-url" : "--extra-index-url", index));
  for (const link of links) args.push("--find-links", link);
  return args;
}

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  if (result.error) throw new SetupError(`${what}: could not run ${command} (${result.error.message}).`);
  if (result.status !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-15).join("\n");
    throw new SetupError(`${what} failed (${command} ${args.join(" ")}):\n${tail}`);
  }
  return result.stdout;
}

export interface PythonEnvOptions {
  /** Where the environment lives (default `build/python` under the project). */
  readonly dir: string;
  readonly groups: readonly PythonGroup[];
  /** The Python that creates the environment (default `python3`). */
  readonly python?: string;
  readonly log?: (line: string) => void;
}

/**
 * Creates the environment if it is missing and installs the groups' packages into it (pip leaves those
 * already there alone, so a second call takes seconds). Returns the environment's `bin` folder.
 */
export function ensurePythonEnv(options: PythonEnvOptions): string {
  const { dir, groups, python = "python3", log = () => undefined } = options;
  const bin = pythonEnvBin(dir);
  const pip = path.join(bin, "pip");
  if (!fs.existsSync(pip)) {
    log(`Creating a Python virtual environment in ${dir}`);
    run(python, ["-m", "venv", dir], "Creating the virtual environment");
  }
  const packages = groups.flatMap((group) => PYTHON_GROUPS[group]);
  const sources = localPipSources(
    spawnSync(python, ["-m", "pip", "config", "list"], { encoding: "utf8" }).stdout ?? "",
  );
  log(
    `Installing ${packages.join(", ")}` +
      `${sources.length ? ` from ${sources.filter((s) => !s.startsWith("--")).join(", ")}` : ""}`,
  );
  run(
    pip,
    ["install", "--quiet", "--disable-pip-version-check", ...sources, ...packages],
    "Installing Python packages",
  );
  return bin;
}
