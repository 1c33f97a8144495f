/** Running the project's commands as real child processes in tests. */
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/vae/data";

export const TINY = ["--jobs", "1", "--epochs", "1", "--train-size", "256", "--test-size", "128", "--data", "embedded"];

export function runCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", script), ...args],
    {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
      env: { ...process.env, ...env },
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function startCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", script), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The charts of notebooks/04-analysis.ipynb, by title, in order (the metrics table is an HTML table). */
export const ANALYSIS_CHART_TITLES = [
  "Rate-distortion: what each coefficient trades",
  "Loss curves of every coefficient (train solid, test dotted)",
  "Encoder output (test zMean) for every KL coefficient",
  "Decoder output over [-3, 3]^2 for every KL coefficient",
  "Encoder output for KL coefficient = 0",
  "Test digits and their reconstructions",
  "Decoded samples of the prior N(0, I)",
];
