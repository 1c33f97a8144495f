/**
 * Every environment variable the project reads, in one typed table: name, default, meaning and parser.
 * `options()` reads them all from the process's environment once, at the first call (each command calls
 * it at start), so that a bad value stops the run at once, naming the variable; `readOption(key, env)`
 * parses one from another environment (a child process's, a test's). No other file reads `process.env`
 * for these names, and the README's table is this one (`test/system/options.test.ts` checks both).
 */

/** An environment as `process.env` holds it. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** A bad value: the message names the variable (or the flag) and what it must be. */
export class OptionError extends Error {
  override name = "OptionError";
}

export type BackendChoice = "tensorflow" | "wasm" | "cpu";
export const BACKEND_CHOICES: readonly BackendChoice[] = ["tensorflow", "wasm", "cpu"];
export const PROFILE_CHOICES = ["tutorial", "quick"] as const;
export type ProfileChoice = (typeof PROFILE_CHOICES)[number];

/** One variable. `parse` gets a value that is set and not blank; `source` names it in errors. */
export interface OptionSpec<T> {
  readonly name: string;
  readonly default: T;
  /** The default as the README's table shows it. */
  readonly shownDefault: string;
  readonly meaning: string;
  readonly parse: (raw: string, source: string) => T;
}

function spec<T>(option: OptionSpec<T>): OptionSpec<T> {
  return Object.freeze(option);
}

/** A 0/1 switch; the error says what each value does. */
function switchParser(on: string, off: string) {
  return (raw: string, source: string): boolean => {
    if (raw === "1") return true;
    if (raw === "0") return false;
    throw new OptionError(`${source} must be 0 (${off}) or 1 (${on}); got "${raw}".`);
  };
}

const text = (raw: string): string => raw;

/** A backend name (also the `--backend` flag's parser); tfjs-node's name is an alias of "tensorflow". */
export function parseBackendChoice(raw: string, source = "the backend"): BackendChoice {
  const name = raw.trim().toLowerCase();
  if (name === "node" || name === "tfjs-node") return "tensorflow";
  if ((BACKEND_CHOICES as readonly string[]).includes(name)) return name as BackendChoice;
  const where = source === "the backend" ? "" : `${source}="${raw}": `;
  throw new OptionError(
    `${where}Unknown backend "${raw}"; use one of: ${BACKEND_CHOICES.join(", ")} (tfjs-node is "tensorflow").`,
  );
}

/** A time limit in seconds (0: none); also the `--cell-timeout` flag's parser. */
export function parseSeconds(raw: string, source: string): number {
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new OptionError(`${source} must be a number of seconds >= 0 (0: no limit); got "${raw}".`);
  }
  return value;
}

/** The table. Order: what users set, then the engine's switches for comparisons, then the tests'. */
export const OPTIONS = Object.freeze({
  profile: spec<ProfileChoice>({
    name: "VAE_PROFILE",
    default: "tutorial",
    shownDefault: "tutorial",
    meaning: "the config profile: tutorial (40 epochs, 10,000 digits) or quick (2 epochs, a subset), everywhere",
    parse: (raw, source) => {
      const name = raw.trim();
      if ((PROFILE_CHOICES as readonly string[]).includes(name)) return name as ProfileChoice;
      throw new OptionError(`${source}="${name}" is not a profile; use one of: ${PROFILE_CHOICES.join(", ")}.`);
    },
  }),
  backend: spec<BackendChoice | undefined>({
    name: "VAE_BACKEND",
    default: undefined,
    shownDefault: "the first that loads",
    meaning: "forces the TensorFlow.js backend: tensorflow (tfjs-node), wasm or cpu",
    parse: (raw, source) => parseBackendChoice(raw, source),
  }),
  cacheDir: spec<string | undefined>({
    name: "VAE_CACHE_DIR",
    default: undefined,
    shownDefault: "data/cache",
    meaning: "the cache folder of the notebooks' sweeps",
    parse: text,
  }),
  staticImages: spec<boolean>({
    name: "VAE_STATIC_IMAGES",
    default: true,
    shownDefault: "1",
    meaning: "0 skips the static PNG beside each interactive figure (no Chromium needed)",
    parse: switchParser("a PNG beside each figure", "no static images"),
  }),
  cellTimeout: spec<number>({
    name: "VAE_CELL_TIMEOUT",
    default: 4 * 3600,
    shownDefault: "14400",
    meaning: "seconds one notebook cell may run in `npm run notebooks` (0: no limit)",
    parse: parseSeconds,
  }),
  chromiumPath: spec<string | undefined>({
    name: "CHROMIUM_PATH",
    default: undefined,
    shownDefault: "found on the PATH",
    meaning: "the Chromium that draws the static images and runs the browser tests",
    parse: text,
  }),
  mnistBaseUrl: spec<string | undefined>({
    name: "MNIST_BASE_URL",
    default: undefined,
    shownDefault: "Google's MNIST mirror",
    meaning: "where `npm run fetch-mnist` downloads the four IDX files from",
    parse: text,
  }),
  python: spec<string | undefined>({
    name: "PYTHON",
    default: undefined,
    shownDefault: "python3",
    meaning: "the Python that `npm run bench -- --pytorch` runs",
    parse: text,
  }),
  wasmThreads: spec<number | undefined>({
    name: "VAE_WASM_THREADS",
    default: undefined,
    shownDefault: "cores, at most 4",
    meaning: "threads of the wasm backend (1 turns threads off); they change no bit",
    parse: (raw, source) => {
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 1 || value > 64) {
        throw new OptionError(`${source} must be a whole number from 1 to 64 (1 turns threads off); got "${raw}".`);
      }
      return value;
    },
  }),
  wasmFma: spec<boolean>({
    name: "VAE_WASM_FMA",
    default: true,
    shownDefault: "1",
    meaning: "0 keeps separate multiplies and adds in the wasm products where fused ones exist (other last bits)",
    parse: switchParser("fused multiply-adds where available", "separate multiplies and adds"),
  }),
  fusedGradients: spec<boolean>({
    name: "VAE_FUSED_GRADIENTS",
    default: true,
    shownDefault: "1",
    meaning: "0 trains with tfjs's automatic differentiation instead of the wasm engine's fused step",
    parse: switchParser("the fused kernel where the backend has it", "tfjs's automatic differentiation"),
  }),
  wasmFastKernels: spec<boolean>({
    name: "VAE_WASM_FAST_KERNELS",
    default: true,
    shownDefault: "1",
    meaning: "0 keeps tfjs's stock wasm kernels: no generated products, no Sum, Identity or transpose fixes",
    parse: switchParser("the engine's products and kernel fixes", "tfjs's stock kernels"),
  }),
  wasmSparse: spec<boolean>({
    name: "VAE_WASM_SPARSE",
    default: true,
    shownDefault: "1",
    meaning: "0 turns off the sparse product for mostly-zero left operands (same bits, slower)",
    parse: switchParser("the sparse product", "dense products only"),
  }),
  crashAt: spec<string | undefined>({
    name: "VAE_CRASH_AT",
    default: undefined,
    shownDefault: "none",
    meaning: "tests only: POINT:N makes a run kill itself the Nth time it reaches POINT",
    parse: text,
  }),
});

export type OptionKey = keyof typeof OPTIONS;
export type OptionValue<K extends OptionKey> = (typeof OPTIONS)[K]["default"];
export type Options = { readonly [K in OptionKey]: OptionValue<K> };

/** Names that were renamed, refused with the new name rather than silently ignored. */
const RENAMED: Readonly<Record<string, OptionKey>> = { VAE_WASM_MATMUL_FIX: "wasmFastKernels" };

/** One option from `env`: its default when unset or blank, else its parsed value (or an `OptionError`). */
export function readOption<K extends OptionKey>(key: K, env: Environment): OptionValue<K> {
  const option = OPTIONS[key] as OptionSpec<OptionValue<K>>;
  const raw = env[option.name];
  return raw === undefined || raw.trim() === "" ? option.default : option.parse(raw.trim(), option.name);
}

/** Every option from `env`; the first bad value, or a renamed variable, throws. */
export function readOptions(env: Environment): Options {
  for (const [old, key] of Object.entries(RENAMED)) {
    if (env[old] !== undefined) {
      throw new OptionError(
        `${old} was renamed ${OPTIONS[key].name} (it switches more than its old name said); set that instead.`,
      );
    }
  }
  const values = {} as Record<OptionKey, unknown>;
  for (const key of Object.keys(OPTIONS) as OptionKey[]) values[key] = readOption(key, env);
  return Object.freeze(values) as Options;
}

let fromProcess: Options | undefined;

/** The options of this process, read from its environment at the first call. */
export function options(): Options {
  fromProcess ??= readOptions(process.env);
  return fromProcess;
}

/** `option(key)` from this process's options, or from `env` when given. */
export function option<K extends OptionKey>(key: K, env?: Environment): OptionValue<K> {
  return env ? readOption(key, env) : options()[key];
}

/** The table as Markdown, as the README shows it. */
export function optionsTable(): string {
  const rows = Object.values(OPTIONS).map(
    (o: OptionSpec<unknown>) => `| \`${o.name}\` | ${o.shownDefault} | ${o.meaning} |`,
  );
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
