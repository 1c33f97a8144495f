/**
 * The library behind the notebooks: `import * as vae from "./src/index"` in a notebook (tslab runs at
 * the project root and needs the file named) or `from "../src"` in scripts. Importing runs nothing;
 * call `initBackend()` first.
 *
 * One folder per concern, each importing only the folders before it in this list (its `index.ts` says
 * what lives there; `test/layout.test.ts` holds the rule):
 *   system -> vae -> backend -> experiment -> plots -> notebook -> cli
 */
// Folders by their index file: tslab, which runs the notebooks, does not resolve a folder import.
export * from "./vae/index";
export * from "./backend/index";
export * from "./experiment/index";
export * from "./plots/index";
export * from "./notebook/index";
