import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import {
  candidateDirs,
  chooseFrontEnd,
  findFrontEnd,
  freePort,
  jupyterServerArgs,
  projectJupyterPath,
  versionMatches,
  type FrontEnd,
} from "../../src/notebook/jupyterServer";
import { PROJECT_ROOT } from "../../src/vae/data";

const installed = (frontEnd: FrontEnd, version: string) => ({ frontEnd, executable: `/x/${frontEnd}`, version });

test("JupyterLab when installed, else Notebook 7, else the classic Notebook, else the command that sets one up", () => {
  assert.deepEqual(
    chooseFrontEnd((f) => (f === "lab" ? installed("lab", "4.6.4") : undefined)),
    { installed: installed("lab", "4.6.4"), reason: "Starting JupyterLab 4.6.4 (/x/lab)." },
  );
  const seven = chooseFrontEnd((f) => (f !== "lab" ? installed(f, "7.6.3") : undefined));
  assert.equal(seven.installed?.frontEnd, "notebook7");
  assert.match(
    seven.reason,
    /^Starting Jupyter Notebook 7 \(7\.6\.3, \/x\/notebook7\): JupyterLab is not installed \(npm run python-env -- jupyter sets up/,
  );
  const classic = chooseFrontEnd((f) => (f === "classic" ? installed(f, "6.4.12") : undefined));
  assert.equal(classic.installed?.frontEnd, "classic");
  const none = chooseFrontEnd(() => undefined);
  assert.equal(none.installed, undefined);
  assert.equal(
    none.reason,
    "No Jupyter is installed: npm run python-env -- jupyter sets up JupyterLab 4 in the project's venv (build/python), or npm run lab -- --install does it and starts it.",
  );
});

test("jupyter-notebook is Notebook 7 from version 7 on and the classic Notebook before; JupyterLab from 4", () => {
  assert.deepEqual(
    ["7.6.3", "6.4.12", "5.7.8", "8.0.0"].map((v) => versionMatches("notebook7", v)),
    [true, false, false, true],
  );
  assert.deepEqual(
    ["7.6.3", "6.4.12", "5.7.8", "4.0.0"].map((v) => versionMatches("classic", v)),
    [false, true, true, false],
  );
  assert.deepEqual(
    ["4.6.4", "3.6.8"].map((v) => versionMatches("lab", v)),
    [true, false],
  );
});

test("the project's venv is searched before PATH, and an executable of the wrong version is passed over", () => {
  const venv = "/p/build/python";
  assert.deepEqual(candidateDirs({ PATH: "/usr/bin:/p/build/python/bin:/bin" }, venv), [
    "/p/build/python/bin",
    "/usr/bin",
    "/bin",
  ]);
  const versions: Record<string, string> = {
    "/p/build/python/bin/jupyter-notebook": "7.6.3",
    "/usr/bin/jupyter-notebook": "6.4.12",
    "/usr/bin/jupyter-lab": "3.6.8",
  };
  const options = { env: { PATH: "/usr/bin" }, pythonEnvDir: venv, probe: (file: string) => versions[file] };
  assert.deepEqual(findFrontEnd("notebook7", options), {
    frontEnd: "notebook7",
    executable: "/p/build/python/bin/jupyter-notebook",
    version: "7.6.3",
  });
  assert.deepEqual(findFrontEnd("classic", options), {
    frontEnd: "classic",
    executable: "/usr/bin/jupyter-notebook",
    version: "6.4.12",
  });
  assert.equal(findFrontEnd("lab", options), undefined, "JupyterLab 3 is not JupyterLab 4");
});

test("the server starts at the project root, opens notebooks/, and takes the port, address and token given", () => {
  const classic = jupyterServerArgs("classic", { port: 8899, ip: "127.0.0.1", token: "abc", openBrowser: false });
  for (const arg of [
    `--notebook-dir=${PROJECT_ROOT}`,
    "--NotebookApp.default_url=/tree/notebooks",
    "--port=8899",
    "--port-retries=0",
    "--ip=127.0.0.1",
    "--NotebookApp.token=abc",
    "--no-browser",
  ]) {
    assert.ok(classic.includes(arg), arg);
  }
  const lab = jupyterServerArgs("lab", { token: "abc", openBrowser: false });
  for (const arg of [
    `--ServerApp.root_dir=${PROJECT_ROOT}`,
    "--ServerApp.default_url=/lab/tree/notebooks",
    "--IdentityProvider.token=abc",
    "--LabApp.expose_app_in_browser=True",
  ])
    assert.ok(lab.includes(arg), arg);
  const seven = jupyterServerArgs("notebook7", { token: "abc", openBrowser: false });
  for (const arg of ["--ServerApp.default_url=/tree/notebooks", "--JupyterNotebookApp.expose_app_in_browser=True"])
    assert.ok(seven.includes(arg), arg);
  assert.ok(!jupyterServerArgs("lab").includes("--no-browser"), "npm run lab opens the browser as Jupyter does");
});

test("JUPYTER_PATH puts the project's jupyter/ folder first and keeps the user's", () => {
  const own = path.join(PROJECT_ROOT, "jupyter");
  assert.equal(projectJupyterPath({}), own);
  assert.equal(projectJupyterPath({ JUPYTER_PATH: "/opt/jupyter" }), `${own}${path.delimiter}/opt/jupyter`);
});

test("a free port is a loopback port nobody listens on", async () => {
  const port = await freePort();
  assert.ok(Number.isInteger(port) && port > 1024 && port < 65536);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
});
