import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { chooseFrontEnd, freePort, jupyterServerArgs, projectJupyterPath } from "../../src/notebook/jupyterServer";
import { PROJECT_ROOT } from "../../src/vae/data";

test("JupyterLab when installed, else the classic Notebook, else a reason naming how to install either", () => {
  assert.deepEqual(chooseFrontEnd(() => true), { frontEnd: "lab", reason: "Starting JupyterLab (installed)." });
  const classic = chooseFrontEnd((frontEnd) => frontEnd === "notebook");
  assert.equal(classic.frontEnd, "notebook");
  assert.match(classic.reason, /^Starting the classic Jupyter Notebook: JupyterLab is not installed \(pip install jupyterlab\)/);
  const none = chooseFrontEnd(() => false);
  assert.equal(none.frontEnd, undefined);
  assert.match(none.reason, /pip install jupyterlab.*apt-get install jupyter-notebook/);
});

test("the server starts at the project root, opens notebooks/, and takes the port, address and token given", () => {
  const classic = jupyterServerArgs("notebook", { port: 8899, ip: "127.0.0.1", token: "abc", openBrowser: false });
  assert.equal(classic[0], "notebook");
  for (const arg of [`--notebook-dir=${PROJECT_ROOT}`, "--NotebookApp.default_url=/tree/notebooks", "--port=8899", "--port-retries=0", "--ip=127.0.0.1", "--NotebookApp.token=abc", "--no-browser"]) {
    assert.ok(classic.includes(arg), arg);
  }
  const lab = jupyterServerArgs("lab", { token: "abc", openBrowser: false });
  for (const arg of ["--ServerApp.default_url=/lab/tree/notebooks", "--ServerApp.token=abc", "--LabApp.expose_app_in_browser=True"]) assert.ok(lab.includes(arg), arg);
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
