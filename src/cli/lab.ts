/**
 * `npm run lab`: JupyterLab on the project, from the project's venv (`build/python`) first, then the
 * `PATH`; else Notebook 7, else the classic Notebook, saying which and why; all at the project root with
 * `JUPYTER_PATH` holding `./jupyter` (the kernel and plotly.js), opening `notebooks/`. With no Jupyter it
 * prints the command that sets one up; `npm run lab -- --install` runs it, then starts JupyterLab. Other
 * arguments go to Jupyter.
 */
import { spawn } from "node:child_process";
import { PROJECT_ROOT } from "../vae/data";
import { chooseFrontEnd, jupyterServerArgs, projectJupyterPath } from "../notebook/jupyterServer";
import { defaultPythonEnvDir, ensurePythonEnv } from "../system/pythonEnv";

function main(): void {
  const args = process.argv.slice(2);
  const install = args.includes("--install");
  if (install) {
    const dir = defaultPythonEnvDir(PROJECT_ROOT);
    console.error(`Setting up JupyterLab 4 and Notebook 7 in ${dir} (npm run python-env -- jupyter)`);
    ensurePythonEnv({ dir, groups: ["jupyter"], log: (line) => console.error(line) });
  }
  const choice = chooseFrontEnd();
  console.error(choice.reason);
  if (!choice.installed) process.exit(1);
  const { frontEnd, executable } = choice.installed;
  const child = spawn(executable, [...jupyterServerArgs(frontEnd), ...args.filter((arg) => arg !== "--install")], {
    cwd: PROJECT_ROOT,
    stdio: "inherit",
    env: { ...process.env, JUPYTER_PATH: projectJupyterPath() },
  });
  // Ctrl-C reaches Jupyter through the terminal; this process waits for it to finish shutting down.
  process.on("SIGINT", () => undefined);
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

main();
