/** Running the project's commands as real child processes in tests. */
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/vae/data";

export const TINY = ["--jobs", "1", "--epochs", "1", "--train-size", "256", "--test-size", "128", "--data", "embedded"];

export function runCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", script), ...args], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function startCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "src", "cli", script), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}
