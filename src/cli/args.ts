/** Shared command-line parsing: strict flags, clear errors, a non-zero exit on misuse. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseBackendName, type BackendName } from "../backend/select";
import { option, options, OptionError, readOptions, type Environment } from "../system/options";

export class UsageError extends Error {
  override name = "UsageError";
}

export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(flagErrorMessage(error as Error & { code?: string }, argv, Object.keys(options)));
  }
}

/** Node's parse error, reworded where it names no fix: an unknown flag gets the nearest known one. */
function flagErrorMessage(error: Error & { code?: string }, argv: string[], known: string[]): string {
  const unknown = /^Unknown option '(-{1,2})([^']*)'/.exec(error.message);
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    const nearest = known
      .map((name) => ({ name, distance: editDistance(unknown[2], name) }))
      .sort((a, b) => a.distance - b.distance)[0];
    const hint = nearest && nearest.distance <= 2 ? ` Did you mean --${nearest.name}?` : "";
    return `Unknown option '${unknown[1]}${unknown[2]}'.${hint} --help lists the options.`;
  }
  // "--seed -1": Node reads -1 as another flag and calls the value ambiguous.
  const ambiguous = /^Option '(--[^']*)' argument is ambiguous/.exec(error.message);
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && ambiguous) {
    const value = argv[argv.indexOf(ambiguous[1]) + 1];
    return (
      `${ambiguous[1]} is followed by "${value}", which reads as a flag, so ${ambiguous[1]} has no value. ` +
      `Give it one (a value that starts with "-" is written ${ambiguous[1]}=${value}).`
    );
  }
  return error.message;
}

/** Levenshtein distance: the fewest one-character insertions, deletions or changes from a to b. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

export function parseInteger(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`--${flag} must be a whole number >= ${min}; got "${value}".`);
  }
  return number;
}

/**
 * `VAE_BACKEND` (which `--backend` mirrors) as a backend name, undefined when unset; a bad name is a
 * usage error worded as for the flag, so both exit with code 2 and the same kind of message.
 */
export function backendFromEnv(env?: Environment): BackendName | undefined {
  try {
    return option("backend", env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A `--backend` value as a backend name (undefined when absent); a bad name is a usage error. */
export function parseBackendFlag(value: string | undefined): BackendName | undefined {
  try {
    return parseBackendName(value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * Plain decimal numbers only (1, 0.5, .5, 1e-3): `Number()` alone would also read "0x10" as 16, "0b1"
 * as 1 and "Infinity", none of which a person means as a coefficient or a step size.
 */
const DECIMAL = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseDecimal(value: string): number | undefined {
  const text = value.trim();
  if (!DECIMAL.test(text)) return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}

export function parsePositive(flag: string, value: string): number {
  const number = parseDecimal(value);
  if (number === undefined || number <= 0)
    throw new UsageError(`--${flag} must be a decimal number > 0 (such as 0.001 or 1e-3); got "${value}".`);
  return number;
}

export function parseNumberList(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  if (parts.length === 0)
    throw new UsageError(`--${flag} needs at least one number, e.g. --${flag} 0,0.5,1; got "${value}".`);
  const numbers = parts.map((part) => {
    const number = parseDecimal(part);
    if (number === undefined)
      throw new UsageError(`--${flag}: "${part}" is not a decimal number >= 0 (such as 0.5 or 20).`);
    return number;
  });
  const repeated = numbers.filter((number, i) => numbers.indexOf(number) !== i);
  if (repeated.length > 0)
    throw new UsageError(`--${flag} repeats ${[...new Set(repeated)].join(", ")}; give each value once.`);
  return numbers;
}

/**
 * Runs a command's main function after reading the environment (`checkEnvironment`), turning usage and
 * config errors into a message and exit code 2, the project's own errors into their message and exit 1.
 * An operating-system error that escaped (it has a code such as ENOENT) is shown as its message too: it
 * concerns a path, not the code.
 */
export function runMain(main: () => Promise<void>, usage: string): void {
  // The environment is read once, first: a bad variable is refused before any work starts.
  const run = async () => {
    checkEnvironment();
    await main();
  };
  run().catch((error: unknown) => {
    const err = error as Error;
    const code = (error as NodeJS.ErrnoException)?.code;
    if (err && ["UsageError", "ConfigError"].includes(err.name)) {
      process.stderr.write(`error: ${err.message}\n\n${usage}\n`);
      process.exitCode = 2;
    } else if (
      err &&
      [
        "TrainingDivergedError",
        "IdxError",
        "RangeError",
        "CacheCorruptError",
        "StorageError",
        "ResultsFileError",
        "SetupError",
      ].includes(err.name)
    ) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = 1;
    } else if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
      process.stderr.write(`error: ${err.message}. Check that path, or choose another.\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`error: ${err && err.stack ? err.stack : String(error)}\n`);
      process.exitCode = 1;
    }
  });
}

/**
 * Reads every environment variable of the options table (`src/system/options.ts`) once, at a command's
 * start, so that a bad value stops the command at once with exit code 2 and the variable's name (as a
 * bad flag does), not later with a stack trace from inside the backend.
 */
export function checkEnvironment(env: Environment = process.env): void {
  try {
    if (env === process.env) options();
    else readOptions(env);
  } catch (error) {
    throw error instanceof OptionError ? new UsageError(error.message) : error;
  }
}
