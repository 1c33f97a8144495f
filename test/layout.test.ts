/**
 * The layout of `src/`: one folder per concern, imports in one direction only. Each folder's `index.ts`
 * says which folders it may import ("May import: ..."); this test reads those lines and every import in
 * `src/`, and fails on an import against them or on any import circle between files.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { PROJECT_ROOT } from "../src/vae/data";

const SRC = path.join(PROJECT_ROOT, "src");

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [path.relative(SRC, full).split(path.sep).join("/")] : [];
  });
}

/** A file's folder under src ("vae", "backend", ...); "index" for src/index.ts itself. */
function folderOf(file: string): string {
  return file.includes("/") ? file.slice(0, file.indexOf("/")) : "index";
}

/** Relative imports of every file (static, `export ... from`, dynamic `import()` and `require`), resolved to files. */
function importGraph(files: readonly string[]): Graph {
  const known = new Set(files);
  const graph: Graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(SRC, file), "utf8"), true, true);
    const targets = info.importedFiles
      .map((ref) => ref.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => {
        const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), name));
        // tslab resolves a notebook's imports among its own compiled outputs, where "./vae" does not find
        // "./vae/index": every import names its file.
        const target = `${base}.ts`;
        assert.ok(
          known.has(target),
          `${file} imports "${name}", which names no file under src/ (name the file, e.g. "${name}/index")`,
        );
        return target;
      });
    graph.set(file, targets);
  }
  return graph;
}

/** The folders each folder may import, read from the "May import:" line of its index.ts. */
function folderRules(folders: readonly string[]): Map<string, Set<string>> {
  const rules = new Map<string, Set<string>>();
  for (const folder of folders) {
    const index = path.join(SRC, folder, "index.ts");
    assert.ok(fs.existsSync(index), `src/${folder} has no index.ts saying what lives there and what it may import`);
    const line = /May import: ([^.]*)\./.exec(fs.readFileSync(index, "utf8"));
    assert.ok(line, `src/${folder}/index.ts has no "May import: ..." line`);
    const allowed = /nothing/.test(line[1]) ? [] : line[1].split(",").map((name) => name.trim());
    for (const name of allowed)
      assert.ok(folders.includes(name), `src/${folder}/index.ts allows "${name}", which is no folder of src/`);
    rules.set(folder, new Set(allowed));
  }
  return rules;
}

/** Imports from one folder into another that the rules do not allow. src/index.ts may import every folder. */
function violations(graph: Graph, rules: Map<string, Set<string>>): string[] {
  const found: string[] = [];
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    if (from === "index") continue;
    for (const target of targets) {
      const to = folderOf(target);
      if (to !== from && !rules.get(from)?.has(to))
        found.push(
          `src/${file} imports src/${target} (${from} may import: ${[...(rules.get(from) ?? [])].join(", ") || "nothing"})`,
        );
    }
  }
  return found;
}

/** One import circle as a path a -> b -> ... -> a, or undefined when the graph has none. */
function findCircle(graph: Graph): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const circle = visit(next);
      if (circle) return circle;
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of graph.keys()) {
    const circle = visit(node);
    if (circle) return circle;
  }
  return undefined;
}

const files = sourceFiles(SRC);
const folders = [...new Set(files.map(folderOf))].filter((folder) => folder !== "index").sort();

test("the checks find a planted wrong-way import and a planted circle", () => {
  const rules = new Map([
    ["vae", new Set<string>()],
    ["notebook", new Set(["vae"])],
  ]);
  const graph: Graph = new Map([
    ["vae/model.ts", ["notebook/display.ts"]],
    ["notebook/display.ts", ["vae/model.ts"]],
  ]);
  assert.deepEqual(violations(graph, rules), [
    "src/vae/model.ts imports src/notebook/display.ts (vae may import: nothing)",
  ]);
  assert.deepEqual(findCircle(graph), ["vae/model.ts", "notebook/display.ts", "vae/model.ts"]);
  assert.equal(
    findCircle(
      new Map([
        ["a.ts", ["b.ts"]],
        ["b.ts", []],
      ]),
    ),
    undefined,
  );
});

test("src/ is folders by concern, each with an index.ts; only src/index.ts lies at the top", () => {
  assert.deepEqual(
    files.filter((file) => !file.includes("/")),
    ["index.ts"],
  );
  assert.deepEqual(folders, ["backend", "cli", "experiment", "notebook", "plots", "system", "vae"]);
});

test("the folders' rules form one direction: no two folders may import each other, directly or around", () => {
  const rules = folderRules(folders);
  const folderGraph: Graph = new Map([...rules].map(([folder, allowed]) => [folder, [...allowed]]));
  assert.equal(findCircle(folderGraph), undefined);
  // The tutorial's code path reads without the engine, the experiment or the notebook side.
  assert.deepEqual([...(rules.get("vae") ?? [])], ["system"]);
});

test("every import in src/ goes in an allowed direction", () => {
  assert.deepEqual(violations(importGraph(files), folderRules(folders)), []);
});

test("no import circle between the files of src/", () => {
  assert.equal(findCircle(importGraph(files)), undefined);
});
