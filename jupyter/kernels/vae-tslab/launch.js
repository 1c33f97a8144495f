// Starts tslab's TypeScript kernel at the project root, so that notebooks import "./src" and tslab
// type-checks it (tslab uses its working directory as the TypeScript root). Found by Jupyter through
// JUPYTER_PATH=<project>/jupyter; nothing is installed globally.
const path = require("path");

const root = path.resolve(__dirname, "..", "..", "..");
const connectionFile = process.argv[2] && path.resolve(process.argv[2]);
if (!connectionFile) {
  console.error("usage: node launch.js CONNECTION_FILE (Jupyter passes it)");
  process.exit(2);
}
process.chdir(root);
// The zeromq that tslab loads, made to wait for its sockets' binds (see waitOutBinds.js).
const tslabDir = path.join(root, "node_modules", "tslab");
require("./waitOutBinds").waitOutBinds(require(require.resolve("zeromq", { paths: [tslabDir] })));
require(path.join(tslabDir, "dist", "main.js")).startKernel({
  configPath: connectionFile,
  enableFindLocal: false,
});
