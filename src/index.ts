/**
 * The library behind the notebooks: `import * as vae from "./src"` in a notebook (tslab runs at the
 * project root) or `from "../src"` in scripts. Importing runs nothing; call `initBackend()` first.
 */
export * from "./backend";
export * from "./cache";
export * from "./config";
export * from "./data";
export * from "./idx";
export * from "./loss";
export * from "./model";
export * from "./progress";
export * from "./random";
export * from "./sweep";
export * from "./train";
export * from "./browser";
export * from "./display";
export * from "./metrics";
export * from "./notebook";
export * from "./plot";
export * from "./png";
export * from "./render";
export * from "./conclusions";
export * from "./analysis";
export * from "./plotAnalysis";
export * from "./report";
export * from "./bench";
export * from "./html";
