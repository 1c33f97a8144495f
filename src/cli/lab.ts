/**
 * `npm run lab`: JupyterLab on the project when it is installed, else the classic Jupyter Notebook,
 * saying which and why; both at the project root with `JUPYTER_PATH` holding `./jupyter` (the kernel and
 * plotly.js), opening `notebooks/`. Extra arguments go to Jupyter.
 */
import { spawn } from "node:child_process";
import { PROJECT_ROOT } from "../vae/data";
import { chooseFrontEnd, jupyterServerArgs, projectJupyterPath } from "../notebook/jupyterServer";

function main(): void {
  const choice = chooseFrontEnd();
  if (!choice.frontEnd) {
    console.error(choice.reason);
    process.exit(1);
  }
  console.error(choice.reason);
  const args = [...jupyterServerArgs(choice.frontEnd), ...process.argv.slice(2)];
  const child = spawn("jupyter", args, { cwd: PROJECT_ROOT, stdio: "inherit", env: { ...process.env, JUPYTER_PATH: projectJupyterPath() } });
  // Ctrl-C reaches Jupyter through the terminal; this process waits for it to finish shutting down.
  process.on("SIGINT", () => undefined);
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

main();
