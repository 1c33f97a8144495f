/**
 * Starting a Jupyter server on the project: JupyterLab where it is installed, else the classic Notebook
 * (Debian packages only the latter). Used by `npm run lab` and by the browser test of the notebooks.
 *
 * The server runs at the project root with `JUPYTER_PATH` holding `./jupyter`, so that it finds the
 * project's kernel (`jupyter/kernels/vae-tslab`) and serves the project's plotly.js to the notebooks'
 * figures (`jupyter/nbextensions/vae-plotly` for the classic Notebook, `files/node_modules/...` for any
 * server started at the root; see `PLOTLY_SERVER_PATHS` in `display.ts`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";

export type FrontEnd = "lab" | "notebook";

export interface FrontEndChoice {
  readonly frontEnd: FrontEnd | undefined;
  /** Why this one, in a sentence a user can act on. */
  readonly reason: string;
}

/** True when `jupyter SUBCOMMAND --version` answers (the subcommand is installed). */
export function jupyterHas(subcommand: FrontEnd, env: NodeJS.ProcessEnv = process.env): boolean {
  const probe = spawnSync("jupyter", [subcommand, "--version"], { env, encoding: "utf8", timeout: 60_000 });
  return probe.status === 0;
}

/** JupyterLab when installed, else the classic Notebook, else none; the reason says which and why. */
export function chooseFrontEnd(has: (frontEnd: FrontEnd) => boolean = (f) => jupyterHas(f)): FrontEndChoice {
  if (has("lab")) return { frontEnd: "lab", reason: "Starting JupyterLab (installed)." };
  if (has("notebook")) {
    return { frontEnd: "notebook", reason: "Starting the classic Jupyter Notebook: JupyterLab is not installed (pip install jupyterlab); the classic Notebook runs the same notebooks." };
  }
  return { frontEnd: undefined, reason: "Neither JupyterLab nor the classic Notebook is installed: pip install jupyterlab, or on Debian apt-get install jupyter-notebook." };
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

/** The arguments of `jupyter` that start `frontEnd` at the project root, opening the notebooks folder. */
export function jupyterServerArgs(frontEnd: FrontEnd, options: ServerOptions = {}): string[] {
  const app = frontEnd === "lab" ? "ServerApp" : "NotebookApp";
  const args = [frontEnd, `--notebook-dir=${PROJECT_ROOT}`, `--${app}.default_url=${frontEnd === "lab" ? "/lab/tree/notebooks" : "/tree/notebooks"}`];
  if (options.port !== undefined) args.push(`--port=${options.port}`, "--port-retries=0");
  if (options.ip !== undefined) args.push(`--ip=${options.ip}`);
  if (options.token !== undefined) args.push(`--${app}.token=${options.token}`);
  if (options.openBrowser === false) args.push("--no-browser");
  // Jupyter refuses to run as root (containers, CI) unless told.
  if (process.getuid?.() === 0) args.push("--allow-root");
  // JupyterLab hands its application object to the page only when asked: the browser test drives it.
  if (frontEnd === "lab" && options.openBrowser === false) args.push("--LabApp.expose_app_in_browser=True");
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
 * Starts `frontEnd` on a free loopback port with a random token and waits until it answers, with its
 * own configuration and runtime folders (no user settings apply). `env` reaches the kernels it starts.
 */
export async function startJupyterServer(frontEnd: FrontEnd, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<RunningServer> {
  const port = await freePort();
  const token = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vae-jupyter-"));
  const child: ChildProcess = spawn("jupyter", jupyterServerArgs(frontEnd, { port, ip: "127.0.0.1", token, openBrowser: false }), {
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
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      // The server's kernels run in their own sessions; stopping the server shuts them down.
      process.kill(-child.pid, "SIGTERM");
      const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))]);
      if (!killed) process.kill(-child.pid, "SIGKILL");
    }
    fs.rmSync(home, { recursive: true, force: true });
  };
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`jupyter ${frontEnd} exited with code ${child.exitCode} before answering:\n${output}`);
    }
    try {
      const response = await fetch(`${url}api/status?token=${token}`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw new Error(`jupyter ${frontEnd} did not answer on ${url} within ${timeoutMs / 1000} s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { frontEnd, url, token, log: () => output, stop };
}
