/**
 * Builds `@tensorflow/tfjs-node`'s native binding here (`npm run setup-tfjs-node`), without its install
 * script, which downloads a prebuilt libtensorflow and binding from Google's storage: the TensorFlow C
 * library (`libtensorflow_cc.so.2`, which exports the C and eager C API, and `libtensorflow_framework.so.2`)
 * and its headers come from the `tensorflow-cpu` wheel of the index pip is configured with, installed into
 * the project's Python environment (`src/system/pythonEnv.ts`); the binding is compiled from the npm
 * package's own source (`binding.gyp`, `binding/*.cc`) with node-gyp (the copy npm ships) and Node's
 * installed headers. The package then loads as it would after its own install script.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensurePythonEnv, pythonEnvBin, SetupError } from "./pythonEnv";

/** The tfjs-node version whose binding this setup builds (the one package.json names). */
export const TFJS_NODE_VERSION = "4.22.0";
/**
 * The N-API version the binding is built for: tfjs-node looks in `lib/napi-v<N>` for the highest N it lists that
 * Node supports.
 */
export const NAPI_BUILD_VERSION = 8;

/** The files of the TensorFlow C library the binding needs, found in the wheel's package folder. */
export interface TensorflowLibrary {
  /** The wheel's `tensorflow` package folder. */
  readonly dir: string;
  readonly includeDir: string;
  /** Exports `TF_*` and `TFE_*`; the binding links it as `-ltensorflow` and loads it by its soname. */
  readonly cc: string;
  readonly framework: string;
  readonly version: string;
}

/** Checks a `tensorflow` package folder for the C library and headers; throws naming what is missing. */
export function findTensorflowLibrary(dir: string, version: string): TensorflowLibrary {
  const library = {
    dir,
    includeDir: path.join(dir, "include"),
    cc: path.join(dir, "libtensorflow_cc.so.2"),
    framework: path.join(dir, "libtensorflow_framework.so.2"),
  };
  const needed = [library.cc, library.framework, path.join(library.includeDir, "tensorflow", "c", "eager", "c_api.h")];
  const missing = needed.filter((file) => !fs.existsSync(file));
  if (missing.length > 0) {
    throw new SetupError(
      `The TensorFlow package at ${dir} lacks ${missing.map((file) => path.relative(dir, file)).join(", ")}: ` +
        "tfjs-node's binding needs a Linux tensorflow-cpu wheel that carries the C library (2.x from pip).",
    );
  }
  return { ...library, version };
}

/**
 * The `tensorflow` package folder in a Python environment and the version of the distribution that
 * installed it, found without importing TensorFlow (which takes seconds).
 */
export function tensorflowPackage(pythonBin: string): { dir: string; version: string } {
  const python = path.join(pythonBin, "python");
  const script = [
    "import importlib.util as u, importlib.metadata as m",
    "s = u.find_spec('tensorflow')",
    "v = [d.version for d in m.distributions() " +
      "if (d.metadata['Name'] or '').lower().replace('_', '-') in ('tensorflow-cpu', 'tensorflow')]",
    "print(s.submodule_search_locations[0] if s else '')",
    "print(v[0] if v else '?')",
  ].join("\n");
  const result = spawnSync(python, ["-c", script], { encoding: "utf8" });
  // Line by line: the first line is empty when there is no tensorflow package.
  const [dir = "", version = "?"] = (result.stdout ?? "").split("\n").map((line) => line.trim());
  if (result.status !== 0 || dir === "")
    throw new SetupError(
      `No tensorflow package in the Python environment ${path.dirname(pythonBin)} ` +
        `(${(result.stderr ?? "").trim() || "find_spec found nothing"}).`,
    );
  return { dir, version };
}

/** node-gyp as npm ships it (npm runs it for packages with a binding.gyp), so nothing is downloaded. */
export function findNodeGyp(env: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  // Under `npm run`, npm_execpath is npm's own bin/npm-cli.js.
  if (env.npm_execpath)
    candidates.push(
      path.join(path.dirname(path.dirname(env.npm_execpath)), "node_modules", "node-gyp", "bin", "node-gyp.js"),
    );
  const npm = spawnSync("npm", ["root", "-g"], { encoding: "utf8" });
  if (npm.status === 0)
    candidates.push(path.join(npm.stdout.trim(), "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found)
    throw new SetupError(
      `node-gyp was not found beside npm (looked at ${candidates.join(", ") || "nothing"}); ` +
        "install npm with Node (it ships node-gyp).",
    );
  return found;
}

/**
 * Node's headers for node-gyp: npm's `nodedir` setting when set, else the installation's own
 * `include/node` (Debian's and the official tarballs have it); node-gyp would otherwise download them.
 */
export function findNodeDir(configured: string | undefined, execPath: string = process.execPath): string {
  const candidates = [configured, path.dirname(path.dirname(execPath))].filter((dir): dir is string =>
    Boolean(dir && dir !== "undefined"),
  );
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, "include", "node", "node_api.h")));
  if (!found)
    throw new SetupError(
      `Node's headers (include/node/node_api.h) are not under ${candidates.join(" or ")}: ` +
        "install them (Debian: apt-get install libnode-dev) or set npm's nodedir.",
    );
  return found;
}

function run(command: string, args: string[], options: { cwd: string; what: string }): void {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 << 20,
  });
  if (result.error) throw new SetupError(`${options.what}: could not run ${command} (${result.error.message}).`);
  if (result.status !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-25).join("\n");
    throw new SetupError(`${options.what} failed (${path.basename(command)} ${args.join(" ")}):\n${tail}`);
  }
}

export interface SetupTfjsNodeOptions {
  readonly projectRoot: string;
  /** The Python environment holding tensorflow-cpu (default build/python). */
  readonly pythonDir: string;
  /** Rebuild even when the stamp says the binding is current. */
  readonly force?: boolean;
  readonly log?: (line: string) => void;
}

export interface SetupTfjsNodeResult {
  readonly packageDir: string;
  readonly binding: string;
  readonly tensorflow: TensorflowLibrary;
  readonly built: boolean;
  readonly seconds: number;
}

/** Where the package is installed; throws with the fix when npm left it out. */
export function tfjsNodePackageDir(projectRoot: string): string {
  const dir = path.join(projectRoot, "node_modules", "@tensorflow", "tfjs-node");
  const manifest = path.join(dir, "package.json");
  if (!fs.existsSync(manifest))
    throw new SetupError(
      `@tensorflow/tfjs-node is not installed in ${path.dirname(dir)}: ` +
        "run npm install (it is an optional dependency) first.",
    );
  const version = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version;
  if (version !== TFJS_NODE_VERSION)
    throw new SetupError(
      `@tensorflow/tfjs-node ${version} is installed; this setup builds ${TFJS_NODE_VERSION}'s binding. ` +
        "Run npm install to get the version package.json names.",
    );
  if (!fs.existsSync(path.join(dir, "binding.gyp")))
    throw new SetupError(
      `${dir} has no binding.gyp: the package's binding source is missing; reinstall it (npm install).`,
    );
  return dir;
}

/**
 * Gives tfjs-node its library and builds its binding: links the wheel's library and headers into the
 * package's `deps/`, compiles a copy of the binding source under `build/tfjs-node`, and writes
 * the binding to `lib/napi-v8/tfjs_binding.node` in the package, where it looks. Skips the compile when
 * the binding on disk was built from the same inputs (a stamp beside it).
 */
export function setupTfjsNode(options: SetupTfjsNodeOptions): SetupTfjsNodeResult {
  const { projectRoot, pythonDir, force = false, log = () => undefined } = options;
  const started = performance.now();
  const packageDir = tfjsNodePackageDir(projectRoot);
  const bin =
    fs.existsSync(path.join(pythonEnvBin(pythonDir), "python")) && !force
      ? pythonEnvBin(pythonDir)
      : ensurePythonEnv({ dir: pythonDir, groups: ["tensorflow"], log });
  let found: { dir: string; version: string };
  try {
    found = tensorflowPackage(bin);
  } catch {
    found = tensorflowPackage(ensurePythonEnv({ dir: pythonDir, groups: ["tensorflow"], log }));
  }
  const tensorflow = findTensorflowLibrary(found.dir, found.version);
  log(`TensorFlow ${tensorflow.version} C library from ${tensorflow.dir}`);

  // deps/ as the binding expects it (binding.gyp links -ltensorflow -ltensorflow_framework from deps/lib
  // and sets the binding's rpath to it). Links, not copies: the C++ library alone is 750 MB.
  const deps = path.join(packageDir, "deps");
  const lib = path.join(deps, "lib");
  fs.mkdirSync(lib, { recursive: true });
  const link = (target: string, at: string) => {
    fs.rmSync(at, { recursive: true, force: true });
    fs.symlinkSync(target, at);
  };
  link(tensorflow.includeDir, path.join(deps, "include"));
  // The linker reads libtensorflow.so; the binding then names the library by its soname, libtensorflow_cc.so.2.
  link(tensorflow.cc, path.join(lib, "libtensorflow.so"));
  link(tensorflow.cc, path.join(lib, "libtensorflow_cc.so.2"));
  link(tensorflow.framework, path.join(lib, "libtensorflow_framework.so"));
  link(tensorflow.framework, path.join(lib, "libtensorflow_framework.so.2"));

  const moduleDir = path.join(packageDir, "lib", `napi-v${NAPI_BUILD_VERSION}`);
  const binding = path.join(moduleDir, "tfjs_binding.node");
  const stampFile = path.join(moduleDir, "build-stamp.json");
  const sources = [
    "binding.gyp",
    ...fs
      .readdirSync(path.join(packageDir, "binding"))
      .sort()
      .map((file) => path.join("binding", file)),
  ];
  const hash = createHash("sha256");
  for (const file of sources) hash.update(file).update(fs.readFileSync(path.join(packageDir, file)));
  const stamp = JSON.stringify({
    tfjsNode: TFJS_NODE_VERSION,
    node: process.versions.modules,
    tensorflow: tensorflow.version,
    library: [
      tensorflow.cc,
      fs.statSync(tensorflow.cc).size,
      tensorflow.framework,
      fs.statSync(tensorflow.framework).size,
    ],
    source: hash.digest("hex"),
  });
  if (!force && fs.existsSync(binding) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === stamp) {
    log(`The binding at ${binding} is current (delete it or pass --force to rebuild).`);
    return { packageDir, binding, tensorflow, built: false, seconds: (performance.now() - started) / 1000 };
  }

  // Compiled in a copy of the source, so that node-gyp's build folder stays out of the installed package.
  const work = path.join(projectRoot, "build", "tfjs-node");
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(path.join(work, "binding"), { recursive: true });
  for (const file of sources) fs.copyFileSync(path.join(packageDir, file), path.join(work, file));
  // binding.gyp finds the library and headers under its own folder's deps/.
  fs.symlinkSync(deps, path.join(work, "deps"));

  const nodeGyp = findNodeGyp();
  const configured = spawnSync("npm", ["config", "get", "nodedir"], { encoding: "utf8" }).stdout?.trim();
  const nodeDir = findNodeDir(configured);
  fs.rmSync(stampFile, { force: true });
  log(`Compiling the binding with ${nodeGyp} (Node headers from ${nodeDir})`);
  run(
    process.execPath,
    [
      nodeGyp,
      "rebuild",
      `--nodedir=${nodeDir}`,
      `--napi_build_version=${NAPI_BUILD_VERSION}`,
      "--module_name=tfjs_binding",
      `--module_path=${moduleDir}`,
    ],
    { cwd: work, what: "Building tfjs-node's binding" },
  );
  if (!fs.existsSync(binding)) throw new SetupError(`node-gyp finished but ${binding} is missing.`);
  fs.writeFileSync(stampFile, stamp);
  return { packageDir, binding, tensorflow, built: true, seconds: (performance.now() - started) / 1000 };
}

/**
 * Loads tfjs-node in a fresh Node process and runs a product whose answer is known:
 * [[1, 2], [3, 4]] x [[5, 6], [7, 8]] = [[1*5 + 2*7, 1*6 + 2*8], [3*5 + 4*7, 3*6 + 4*8]] = [[19, 22], [43, 50]],
 * and a 300 x 300 product of ones (every entry 300).
 * Returns the backend's name and the TensorFlow version it reports; throws with the child's error otherwise.
 */
export function checkTfjsNode(projectRoot: string): { backend: string; tensorflowVersion: string } {
  const script = `
    const tf = require("@tensorflow/tfjs-node");
    const small = Array.from(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync());
    const large = tf.matMul(tf.ones([300, 300]), tf.ones([300, 300])).dataSync();
    const largeOk = large.length === 90000 && large.every((v) => v === 300);
    console.log(JSON.stringify({ backend: tf.getBackend(), small, largeOk, tensorflowVersion: tf.backend().binding.TF_Version }));
  `;
  const result = spawnSync(process.execPath, ["-e", script], {
    cwd: projectRoot,
    encoding: "utf8",
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" },
  });
  const line = (result.stdout ?? "").trim().split("\n").pop() ?? "";
  if (result.status !== 0 || !line.startsWith("{")) {
    throw new SetupError(
      'require("@tensorflow/tfjs-node") failed after the build:\n' +
        `${(result.stderr ?? "").trim().split("\n").slice(-15).join("\n")}`,
    );
  }
  const answer = JSON.parse(line) as { backend: string; small: number[]; largeOk: boolean; tensorflowVersion: string };
  if (answer.backend !== "tensorflow")
    throw new SetupError(`tfjs-node loaded but the active backend is "${answer.backend}", not "tensorflow".`);
  if (answer.small.join(",") !== "19,22,43,50")
    throw new SetupError(
      `tfjs-node computed [[1, 2], [3, 4]] x [[5, 6], [7, 8]] as ${answer.small.join(", ")}, not 19, 22, 43, 50.`,
    );
  if (!answer.largeOk)
    throw new SetupError("tfjs-node's 300 x 300 product of ones did not read back as 300 everywhere.");
  return { backend: answer.backend, tensorflowVersion: answer.tensorflowVersion };
}
