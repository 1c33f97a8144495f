/**
 * The public API: what the notebooks, the README's examples and users call, by name, in the tutorial's
 * order. `import * as vae from "./src/index"` in a notebook (tslab runs at the project root and needs the
 * file named) or `from "../src"` in scripts. Importing runs nothing; call `initBackend()` (or
 * `setupNotebook()`) first. Everything else is internal: tests import it by path. `test/api.test.ts`
 * holds this list and fails on an unintended change.
 *
 * One folder per concern, each importing only the folders before it (`test/layout.test.ts`):
 *   system -> vae -> backend -> experiment -> plots -> notebook -> cli
 */

// Each file is named in full: tslab loads a notebook's imports among its own compiled outputs, as files.

// Setting up: the backend and the config.
/** A notebook's first cell: the backend, the config of the chosen profile, the versions, printed. */
export { setupNotebook } from "./notebook/setup";
/** Picks and starts the TensorFlow.js backend (tfjs-node, else wasm, else cpu) and says why. */
export { initBackend, type BackendInfo } from "./backend/select";
/** One line naming the backend, its version and why it was chosen. */
export { describeBackend } from "./backend/select";
/** The tutorial's values, typed and frozen, with a profile and overrides applied. */
export { loadConfig, type VaeConfig } from "./vae/config";
/** The tutorial's config (40 epochs, eight coefficients) and the small one for tests and CI. */
export { QUICK_CONFIG, TUTORIAL_CONFIG } from "./vae/config";

// The data and the model (notebooks 01 and 02).
/** The digits split into training and test rows (the embedded 10,000, or the full MNIST in data/). */
export { loadMnist, type MnistData } from "./vae/data";
/** `count` seeded draws of a 2D standard normal, as the tutorial's first figure. */
export { standardNormalSamples } from "./vae/random";
/** The tutorial's `build_model`: encoder, sampling layer, decoder and vae. */
export { buildModel, type Vae } from "./vae/model";
/** q(z|x)'s parameters zMean and zLogVar for a batch. */
export { encode } from "./vae/model";
/** The reparameterization trick: z = zMean + exp(zLogVar / 2) * epsilon. */
export { reparameterize } from "./vae/model";
/** p(x|z)'s pixel probabilities; `decodeLogits` stops before the last sigmoid. */
export { decode, decodeLogits } from "./vae/model";
/** Copies the weights out and restores them exactly (`save_weights` / `load_weights`). */
export { setWeights, snapshotWeights } from "./vae/model";
/** The encoder's zMean for every row of a data set. */
export { encodeMeans } from "./vae/latent";
/** The manifold's latent grid and its decoded digits. */
export { decodeManifold, manifoldGrid } from "./vae/latent";

// The loss and the training (notebook 02).
/** 784 * binary cross-entropy, averaged over the batch. */
export { reconstructionLoss } from "./vae/loss";
/** KL(q(z|x) || N(0, I)) in closed form, averaged over the batch. */
export { klLoss } from "./vae/loss";
/** reconstruction + c * KL with the terms kept apart; `vaeLossFromLogits` as training computes it. */
export { vaeLoss, vaeLossFromLogits, type LossTerms } from "./vae/loss";
/** Keras's Adam, the tutorial's optimizer. */
export { kerasAdam } from "./vae/optimizer";
/** Trains one coefficient in place and returns the per-epoch history. */
export { train, type EpochEndEvent, type EpochRecord, type TrainOptions } from "./vae/train";
/** One Adam step on one batch, and one pass over the training set. */
export { trainEpoch, trainStep } from "./vae/train";
/** The loss terms over a whole data set. */
export { evaluate } from "./vae/train";

// The sweep and what it shows (notebooks 03 and 04).
/** Trains every coefficient from the same initial weights, cached on disk and resumable. */
export { runSweep, type SweepOptions, type SweepResult } from "./experiment/sweep";
/** Rate, distortion and the latent measures of every coefficient, and their table. */
export { metricsTable, sweepMetrics } from "./experiment/metrics";
/** The mean and covariance of 2D points; the KL of a Gaussian from N(0, I). */
export { gaussianKlFromStandard, meanAndCovariance } from "./experiment/metrics";
/** Checks the tutorial's conclusions against a sweep's numbers, and reports them. */
export { checkConclusions, conclusionsReport } from "./experiment/conclusions";
/** Over several training seeds: each conclusion checked per seed, and in how many it holds. */
export { checkConclusionsAcrossSeeds } from "./experiment/conclusions";
/** Per coefficient, each metric's mean, sample standard deviation, min and max over the seeds. */
export { seedSpreads } from "./experiment/statistics";

// The figures and the notebook display.
/** The tutorial's figures as plotly specs: prior samples, encoder scatter, decoder manifold, loss curves. */
export { latentScatterFigure, lossCurvesFigure, manifoldFigure, normalSamplesFigure, type Figure } from "./plots/plot";
/** Shows a figure in the notebook (interactive, with a static image); `closeFigures` ends the session. */
export { closeFigures, showFigure } from "./notebook/display";
/** The sweep with live progress in the notebook; a progress display for `train`. */
export { LiveProgress, runSweepLive } from "./notebook/display";
/** The sweep's per-coefficient summary as a table. */
export { summaryTable } from "./notebook/progress";
/** The interactive decoder: move through the latent space and see the digit drawn there. */
export { showLatentExplorer } from "./notebook/explorer";
/** Notebook 04's figures, each with its name. */
export { analysisFigures, type NamedFigure } from "./notebook/report";
/** Notebook 04's seeds section: their spread and conclusions from the cache, or the command to train them. */
export { showSeedSweep } from "./notebook/seeds";
