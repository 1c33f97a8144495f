/**
 * The public API report (as api-extractor keeps one): the names `src/index.ts` exports, held here by hand.
 * A name added, removed or renamed there fails this test until the list below says so too, so that the
 * public surface changes only on purpose. Internals are imported by path and are not listed.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { PROJECT_ROOT } from "../src/vae/data";

const INDEX = path.join(PROJECT_ROOT, "src", "index.ts");

/** Every public name and what it is: a function, a class, a value or a type. */
const PUBLIC_API: Record<string, "function" | "class" | "value" | "type"> = {
  // Setting up.
  setupNotebook: "function",
  initBackend: "function",
  BackendInfo: "type",
  describeBackend: "function",
  loadConfig: "function",
  VaeConfig: "type",
  QUICK_CONFIG: "value",
  TUTORIAL_CONFIG: "value",
  // The data and the model.
  loadMnist: "function",
  MnistData: "type",
  standardNormalSamples: "function",
  buildModel: "function",
  Vae: "type",
  encode: "function",
  reparameterize: "function",
  decode: "function",
  decodeLogits: "function",
  setWeights: "function",
  snapshotWeights: "function",
  encodeMeans: "function",
  decodeManifold: "function",
  manifoldGrid: "function",
  // The loss and the training.
  reconstructionLoss: "function",
  klLoss: "function",
  vaeLoss: "function",
  vaeLossFromLogits: "function",
  LossTerms: "type",
  kerasAdam: "function",
  train: "function",
  EpochEndEvent: "type",
  EpochRecord: "type",
  TrainOptions: "type",
  trainEpoch: "function",
  trainStep: "function",
  evaluate: "function",
  // The sweep and what it shows.
  runSweep: "function",
  SweepOptions: "type",
  SweepResult: "type",
  metricsTable: "function",
  sweepMetrics: "function",
  gaussianKlFromStandard: "function",
  meanAndCovariance: "function",
  checkConclusions: "function",
  conclusionsReport: "function",
  checkConclusionsAcrossSeeds: "function",
  seedSpreads: "function",
  // The figures and the notebook display.
  latentScatterFigure: "function",
  lossCurvesFigure: "function",
  manifoldFigure: "function",
  normalSamplesFigure: "function",
  Figure: "type",
  closeFigures: "function",
  showFigure: "function",
  LiveProgress: "class",
  runSweepLive: "function",
  summaryTable: "function",
  showLatentExplorer: "function",
  analysisFigures: "function",
  NamedFigure: "type",
  showSeedSweep: "function",
};

/** The names src/index.ts exports, each with its kind, read by the TypeScript compiler. */
function exportedNames(): Record<string, string> {
  const program = ts.createProgram([INDEX], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(INDEX);
  assert.ok(source, "src/index.ts is missing");
  const found: Record<string, string> = {};
  for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(source)!)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const kind =
      target.flags & ts.SymbolFlags.Function
        ? "function"
        : target.flags & ts.SymbolFlags.Class
          ? "class"
          : target.flags & ts.SymbolFlags.Value
            ? "value"
            : "type";
    found[symbol.name] = kind;
  }
  return found;
}

test("src/index.ts exports exactly the listed public names, each of the listed kind", () => {
  const found = exportedNames();
  const added = Object.keys(found).filter((name) => !(name in PUBLIC_API));
  const removed = Object.keys(PUBLIC_API).filter((name) => !(name in found));
  assert.deepEqual(
    added,
    [],
    `exported but not in test/api.test.ts's list (add them there if they are meant to be public): ${added.join(", ")}`,
  );
  assert.deepEqual(
    removed,
    [],
    `listed in test/api.test.ts but no longer exported by src/index.ts: ${removed.join(", ")}`,
  );
  for (const [name, kind] of Object.entries(PUBLIC_API))
    assert.equal(found[name], kind, `${name} is a ${found[name]}, listed as a ${kind}`);
  assert.ok(
    Object.keys(PUBLIC_API).length <= 60,
    `the public API holds ${Object.keys(PUBLIC_API).length} names; keep it to what users call`,
  );
});

test("every export of src/index.ts is by name, under a one-line doc comment", () => {
  const text = fs.readFileSync(INDEX, "utf8");
  const source = ts.createSourceFile(INDEX, text, ts.ScriptTarget.ES2022, true);
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement)) continue;
    const line = source.getLineAndCharacterOfPosition(statement.getStart()).line + 1;
    assert.ok(
      statement.exportClause && ts.isNamedExports(statement.exportClause),
      `src/index.ts:${line} re-exports a whole module; export by name`,
    );
    const docs = ts.getLeadingCommentRanges(text, statement.getFullStart()) ?? [];
    const doc = docs.length > 0 ? text.slice(docs[docs.length - 1].pos, docs[docs.length - 1].end) : undefined;
    assert.ok(
      doc?.startsWith("/**") && !doc.includes("\n"),
      `src/index.ts:${line} (${statement.exportClause.getText()}) has no one-line /** doc comment */ above it`,
    );
  }
});
