/**
 * The first cell of every notebook: versions, the backend, the profile, and plotly.js on the page.
 */
import { options } from "../system/options";
import * as tf from "@tensorflow/tfjs";
import { describeBackend, initBackend, type BackendInfo } from "../backend/select";
import { loadConfig, profileFromEnv, type VaeConfig } from "../vae/config";
import { loadPlotly } from "./display";
import { plotlyVersion } from "../plots/plot";

export interface NotebookContext {
  readonly config: VaeConfig;
  readonly backend: BackendInfo;
}

/** Prints the versions and the backend, loads plotly.js once, and returns the active config. */
export async function setupNotebook(overrides: Partial<VaeConfig> = {}): Promise<NotebookContext> {
  options(); // every environment variable read once, here: a bad one stops the first cell
  const backend = await initBackend({ quiet: true });
  const config = loadConfig(overrides);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tslab = require("tslab") as { versions: { tslab: string; typescript: string; node: string } };
  console.log(
    `Node.js ${tslab.versions.node}, tslab ${tslab.versions.tslab} (TypeScript ${tslab.versions.typescript}), ` +
      `TensorFlow.js ${tf.version.tfjs}, plotly.js ${plotlyVersion()}`,
  );
  console.log(describeBackend(backend));
  console.log(
    `Profile "${profileFromEnv()}": ${config.epochs} epochs, batch ${config.batchSize}, ` +
      `${config.trainSize} train / ${config.testSize} test digits (${config.dataSource}), ` +
      `c in [${config.klCoefficients.join(", ")}], seed ${config.seed}`,
  );
  loadPlotly();
  return { config, backend };
}
