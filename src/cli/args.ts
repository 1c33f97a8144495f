/** Shared command-line parsing: strict flags, clear errors, a non-zero exit on misuse. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseBackendName, type BackendName } from "../backend/select";

export class UsageError extends Error {
  override name = "UsageError";
}

export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function parseInteger(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`--${flag} must be a whole number >= ${min}; got "${value}".`);
  }
  return number;
}

/** A `--backend` value as a backend name (undefined when absent); a bad name is a usage error. */
export function parseBackendFlag(value: string | undefined): BackendName | undefined {
  try {
    return parseBackendName(value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function parsePositive(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number) || number <= 0) throw new UsageError(`--${flag} must be a finite number > 0; got "${value}".`);
  return number;
}

export function parseNumberList(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (parts.length === 0) throw new UsageError(`--${flag} needs at least one number, e.g. --${flag} 0,0.5,1; got "${value}".`);
  return parts.map((part) => {
    const number = Number(part);
    if (!Number.isFinite(number) || number < 0) throw new UsageError(`--${flag}: "${part}" is not a finite number >= 0.`);
    return number;
  });
}

/** Runs a command's main function, turning usage and config errors into a message and exit code 2. */
export function runMain(main: () => Promise<void>, usage: string): void {
  main().catch((error: unknown) => {
    const err = error as Error;
    if (err && ["UsageError", "ConfigError"].includes(err.name)) {
      process.stderr.write(`error: ${err.message}\n\n${usage}\n`);
      process.exitCode = 2;
    } else if (err && ["TrainingDivergedError", "IdxError", "RangeError", "CacheCorruptError", "StorageError", "ResultsFileError"].includes(err.name)) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`error: ${err && err.stack ? err.stack : String(error)}\n`);
      process.exitCode = 1;
    }
  });
}
