/**
 * Starting a Jupyter server on the project: JupyterLab 4, Jupyter Notebook 7 or the classic Notebook 6,
 * from the project's Python environment (`build/python`) first, then the `PATH`. Used by `npm run lab` and
 * by the browser test of the notebooks. The server runs at the project root with `JUPYTER_PATH` holding
 * `./jupyter`, so that it finds the project's kernel (`jupyter/kernels/vae-tslab`) and serves plotly.js to the
 * figures (`jupyter/nbextensions/vae-plotly` for the classic Notebook, `files/node_modules/...` for the
 * others; see `PLOTLY_SERVER_PATHS` in `display.ts`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";
import { defaultPythonEnvDir, pythonEnvBin } from "../system/pythonEnv";

/**
 * The three front ends: JupyterLab 4, Notebook 7 (JupyterLab's components, one notebook per page), the classic
 * Notebook 6.
 */
export type FrontEnd = "lab" | "notebook7" | "classic";

export const FRONT_END_NAMES: Readonly<Record<FrontEnd, string>> = Object.freeze({
  lab: "JupyterLab 4",
  notebook7: "Jupyter Notebook 7",
  classic: "the classic Jupyter Notebook 6",
});

/** The command that installs JupyterLab 4 and Notebook 7 into the project's environment. */
export const PYTHON_ENV_COMMAND = "npm run python-env -- jupyter";

/** How a user gets each front end. */
export const FRONT_END_INSTALL: Readonly<Record<FrontEnd, string>> = Object.freeze({
  lab: `${PYTHON_ENV_COMMAND} (the project's venv in build/python)`,
  notebook7: `${PYTHON_ENV_COMMAND} (the project's venv in build/python)`,
  classic: "apt-get install jupyter-notebook (Debian)",
});

/** A front end found on this machine: the executable that starts it and its version. */
export interface InstalledFrontEnd {
  readonly frontEnd: FrontEnd;
  readonly executable: string;
  readonly version: string;
}

/** The executable each front end is started with (`jupyter lab` runs `jupyter-lab`). */
const EXECUTABLE: Readonly<Record<FrontEnd, string>> = {
  lab: "jupyter-lab",
  notebook7: "jupyter-notebook",
  classic: "jupyter-notebook",
};

/** Whether a version string (`jupyter-x --version`) is the given front end's: `jupyter-notebook` is either Notebook. */
export function versionMatches(frontEnd: FrontEnd, version: string): boolean {
  const major = Number(/^(\d+)\./.exec(version.trim())?.[1]);
  if (frontEnd === "lab") return major >= 4;
  if (frontEnd === "notebook7") return major >= 7;
  return major >= 5 && major < 7;
}

/** Where to look for a front end's executable: the project's environment first, then each `PATH` folder. */
export function candidateDirs(
  env: NodeJS.ProcessEnv = process.env,
  pythonEnvDir = defaultPythonEnvDir(PROJECT_ROOT),
): string[] {
  const dirs = [pythonEnvBin(pythonEnvDir), ...(env.PATH ?? "").split(path.delimiter).filter(Boolean)];
  return [...new Set(dirs.map((dir) => path.resolve(dir)))];
}

/** The version an executable reports, or undefined when it does not run. */
function versionOf(executable: string): string | undefined {
  const probe = spawnSync(executable, ["--version"], { encoding: "utf8", timeout: 60_000 });
  if (probe.status !== 0) return undefined;
  return probe.stdout.trim().split("\n").pop()?.trim();
}

/**
 * The first installation of `frontEnd` among `candidateDirs`, or undefined. `probe` (for tests) returns
 * the version an executable reports, or undefined when it is missing or fails.
 */
export function findFrontEnd(
  frontEnd: FrontEnd,
  options: { env?: NodeJS.ProcessEnv; pythonEnvDir?: string; probe?: (executable: string) => string | undefined } = {},
): InstalledFrontEnd | undefined {
  const {
    env = process.env,
    pythonEnvDir,
    probe = (file: string) => (fs.existsSync(file) ? versionOf(file) : undefined),
  } = options;
  for (const dir of candidateDirs(env, pythonEnvDir)) {
    const executable = path.join(dir, EXECUTABLE[frontEnd]);
    const version = probe(executable);
    if (version !== undefined && versionMatches(frontEnd, version)) return { frontEnd, executable, version };
  }
  return undefined;
}

export interface FrontEndChoice {
  readonly installed: InstalledFrontEnd | undefined;
  /** Why this one, in a sentence a user can act on. */
  readonly reason: string;
}

/** JupyterLab when installed, else Notebook 7, else the classic Notebook, else none; the reason says which and why. */
export function chooseFrontEnd(
  find: (frontEnd: FrontEnd) => InstalledFrontEnd | undefined = (f) => findFrontEnd(f),
): FrontEndChoice {
  const lab = find("lab");
  if (lab) return { installed: lab, reason: `Starting JupyterLab ${lab.version} (${lab.executable}).` };
  const setUp =
    `${PYTHON_ENV_COMMAND} sets up JupyterLab 4 in the project's venv (build/python), ` +
    "or npm run lab -- --install does it and starts it";
  for (const frontEnd of ["notebook7", "classic"] as const) {
    const found = find(frontEnd);
    if (found)
      return {
        installed: found,
        reason:
          `Starting ${FRONT_END_NAMES[frontEnd]} (${found.version}, ${found.executable}): ` +
          `JupyterLab is not installed (${setUp}).`,
      };
  }
  return { installed: undefined, reason: `No Jupyter is installed: ${setUp}.` };
}

/** `JUPYTER_PATH` with the project's `jupyter/` folder first. */
export function projectJupyterPath(env: NodeJS.ProcessEnv = process.env): string {
  const own = path.join(PROJECT_ROOT, "jupyter");
  return env.JUPYTER_PATH ? `${own}${path.delimiter}${env.JUPYTER_PATH}` : own;
}

export interface ServerOptions {
  readonly port?: number;
  readonly ip?: string;
  /** The token the server asks for; empty for none. */
  readonly token?: string;
  readonly openBrowser?: boolean;
}

/**
 * The arguments of the front end's executable (`jupyter-lab`, `jupyter-notebook`) that start it at the project
 * root, opening the notebooks folder.
 */
export function jupyterServerArgs(frontEnd: FrontEnd, options: ServerOptions = {}): string[] {
  // The classic Notebook is its own server (NotebookApp); the other two run on jupyter_server (ServerApp).
  const classic = frontEnd === "classic";
  const args = classic
    ? [`--notebook-dir=${PROJECT_ROOT}`, "--NotebookApp.default_url=/tree/notebooks"]
    : [
        `--ServerApp.root_dir=${PROJECT_ROOT}`,
        `--ServerApp.default_url=${frontEnd === "lab" ? "/lab/tree/notebooks" : "/tree/notebooks"}`,
      ];
  if (options.port !== undefined) args.push(`--port=${options.port}`, "--port-retries=0");
  if (options.ip !== undefined) args.push(`--ip=${options.ip}`);
  if (options.token !== undefined)
    args.push(classic ? `--NotebookApp.token=${options.token}` : `--IdentityProvider.token=${options.token}`);
  if (options.openBrowser === false) args.push("--no-browser");
  // Jupyter refuses to run as root (containers, CI) unless told.
  if (process.getuid?.() === 0) args.push("--allow-root");
  // JupyterLab and Notebook 7 hand their application object to the page only when asked: the browser test drives it.
  if (options.openBrowser === false && frontEnd === "lab") args.push("--LabApp.expose_app_in_browser=True");
  if (options.openBrowser === false && frontEnd === "notebook7")
    args.push("--JupyterNotebookApp.expose_app_in_browser=True");
  return args;
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningServer {
  readonly frontEnd: FrontEnd;
  /** The server's root URL, ending in "/". */
  readonly url: string;
  readonly token: string;
  /** Everything the server printed, for a failure message. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts an installed front end on a free loopback port with a random token and waits until it answers,
 * with its own configuration, data and runtime folders (no user settings or saved JupyterLab workspace
 * apply). `env` reaches the kernels it starts.
 */
export async function startJupyterServer(
  installed: InstalledFrontEnd,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<RunningServer> {
  const { frontEnd, executable } = installed;
  const port = await freePort();
  const token = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vae-jupyter-"));
  const child: ChildProcess = spawn(
    executable,
    jupyterServerArgs(frontEnd, { port, ip: "127.0.0.1", token, openBrowser: false }),
    {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        ...env,
        JUPYTER_PATH: projectJupyterPath(env.JUPYTER_PATH === undefined ? process.env : env),
        JUPYTER_CONFIG_DIR: path.join(home, "config"),
        JUPYTER_RUNTIME_DIR: path.join(home, "runtime"),
        JUPYTER_DATA_DIR: path.join(home, "data"),
        IPYTHONDIR: path.join(home, "ipython"),
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      // The server's kernels run in their own sessions; stopping the server shuts them down.
      process.kill(-child.pid, "SIGTERM");
      const killed = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
      ]);
      if (!killed) process.kill(-child.pid, "SIGKILL");
    }
    fs.rmSync(home, { recursive: true, force: true });
  };
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`${executable} exited with code ${child.exitCode} before answering:\n${output}`);
    }
    try {
      const response = await fetch(`${url}api/status?token=${token}`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw new Error(`${executable} did not answer on ${url} within ${timeoutMs / 1000} s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { frontEnd, url, token, log: () => output, stop };
}
