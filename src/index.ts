/**
 * The library behind the notebooks: `import * as vae from "./src/index"` in a notebook (tslab runs at
 * the project root and needs the file named) or `from "../src"` in scripts. Importing runs nothing;
 * call `initBackend()` first. The headless runner (`kernel`, `notebooks`), locks and workers are used
 * by the command lines and are imported from their own modules.
 */
export * from "./analysis";
export * from "./backend";
export * from "./bench";
export * from "./browser";
export * from "./cache";
export * from "./conclusions";
export * from "./config";
export * from "./data";
export * from "./display";
export * from "./html";
export * from "./idx";
export * from "./loss";
export * from "./metrics";
export * from "./model";
export * from "./notebook";
export * from "./optimizer";
export * from "./plot";
export * from "./plotAnalysis";
export * from "./png";
export * from "./progress";
export * from "./random";
export * from "./render";
export * from "./report";
export * from "./sweep";
export * from "./train";
