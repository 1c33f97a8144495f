/**
 * `src/plots`: figures. Pure plotly.js specs (plain JSON, no DOM, no kernel), PNG encoding, and static
 * images drawn by plotly.js in headless Chromium.
 *
 * - `plot.ts`: the tutorial's figures (normal samples, latent scatter, manifold, loss curves).
 * - `plotAnalysis.ts`: the comparison charts (every coefficient at a glance).
 * - `png.ts`: greyscale PNG encoding for digit grids.
 * - `explorer.ts`, `explorerPage.js`: the latent explorer (decoders packed for the page, the page script).
 * - `render.ts`, `browser.ts`: static PNGs of figures through headless Chromium.
 *
 * May import: system, vae, experiment.
 */
export * from "./browser";
export * from "./explorer";
export * from "./plot";
export * from "./plotAnalysis";
export * from "./png";
export * from "./render";
