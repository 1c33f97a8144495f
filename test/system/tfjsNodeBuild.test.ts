import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  checkTfjsNode,
  findNodeDir,
  findTensorflowLibrary,
  NAPI_BUILD_VERSION,
  TFJS_NODE_VERSION,
  tfjsNodePackageDir,
} from "../../src/system/tfjsNodeBuild";
import { PROJECT_ROOT } from "../../src/vae/data";

const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), "vae-tfjs-node-"));

test("a tensorflow package without the C library is refused, naming the missing files", () => {
  const dir = scratch();
  fs.writeFileSync(path.join(dir, "libtensorflow_framework.so.2"), "");
  assert.throws(
    () => findTensorflowLibrary(dir, "2.21.0"),
    /lacks libtensorflow_cc\.so\.2, include\/tensorflow\/c\/eager\/c_api\.h: .*tensorflow-cpu wheel/,
  );
  fs.writeFileSync(path.join(dir, "libtensorflow_cc.so.2"), "");
  fs.mkdirSync(path.join(dir, "include", "tensorflow", "c", "eager"), { recursive: true });
  fs.writeFileSync(path.join(dir, "include", "tensorflow", "c", "eager", "c_api.h"), "");
  assert.equal(findTensorflowLibrary(dir, "2.21.0").cc, path.join(dir, "libtensorflow_cc.so.2"));
});

test("Node's headers: npm's nodedir first, else the installation's include/node; a clear error when neither has them", () => {
  const configured = scratch();
  const installed = scratch();
  fs.mkdirSync(path.join(installed, "include", "node"), { recursive: true });
  fs.writeFileSync(path.join(installed, "include", "node", "node_api.h"), "");
  const node = path.join(installed, "bin", "node");
  assert.equal(findNodeDir(undefined, node), installed);
  assert.equal(findNodeDir("undefined", node), installed);
  // A configured folder without headers is passed over.
  assert.equal(findNodeDir(configured, node), installed);
  fs.mkdirSync(path.join(configured, "include", "node"), { recursive: true });
  fs.writeFileSync(path.join(configured, "include", "node", "node_api.h"), "");
  assert.equal(findNodeDir(configured, node), configured);
  assert.throws(
    () => findNodeDir(undefined, path.join(scratch(), "bin", "node")),
    /Node's headers \(include\/node\/node_api\.h\) are not under .*libnode-dev/,
  );
});

test("the package must be installed, at the version whose binding is built", () => {
  const root = scratch();
  assert.throws(() => tfjsNodePackageDir(root), /@tensorflow\/tfjs-node is not installed .*run npm install/);
  const dir = path.join(root, "node_modules", "@tensorflow", "tfjs-node");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ version: "4.21.0" }));
  assert.throws(
    () => tfjsNodePackageDir(root),
    new RegExp(`4\\.21\\.0 is installed; this setup builds ${TFJS_NODE_VERSION.replace(/\./g, "\\.")}'s binding`),
  );
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ version: TFJS_NODE_VERSION }));
  assert.throws(() => tfjsNodePackageDir(root), /has no binding\.gyp/);
  fs.writeFileSync(path.join(dir, "binding.gyp"), "{}");
  assert.equal(tfjsNodePackageDir(root), dir);
});

// The built binding itself, where npm run setup-tfjs-node has run (CI runs it first, so there it is required).
const binding = path.join(
  PROJECT_ROOT,
  "node_modules",
  "@tensorflow",
  "tfjs-node",
  "lib",
  `napi-v${NAPI_BUILD_VERSION}`,
  "tfjs_binding.node",
);
const built = fs.existsSync(binding);
test(
  "the built binding loads and multiplies: [[1, 2], [3, 4]] x [[5, 6], [7, 8]] = [[19, 22], [43, 50]]",
  { skip: !built && !process.env.CI ? "npm run setup-tfjs-node has not run here" : false },
  () => {
    assert.ok(built, `${binding} is missing: CI runs npm run setup-tfjs-node before the tests.`);
    const answer = checkTfjsNode(PROJECT_ROOT);
    assert.equal(answer.backend, "tensorflow");
    assert.match(answer.tensorflowVersion, /^2\.\d+/);
  },
);
