/**
 * `src/plots`: figures: pure plotly.js specs (plain JSON, no DOM, no kernel), PNGs, static images.
 * - `plot`: the tutorial's figures; `plotAnalysis`: the comparison charts; `png`: greyscale PNG encoding.
 * - `explorer`, `explorerPage.js`: the latent explorer (decoders packed for the page, the page script).
 * - `render`, `browser`: static PNGs of figures through headless Chromium.
 * May import: system, vae, experiment.
 */
export * from "./browser";
export * from "./explorer";
export * from "./plot";
export * from "./plotAnalysis";
export * from "./png";
export * from "./render";
