/**
 * `src/system`: small helpers about the process, not about VAEs.
 * - `options`: every environment variable in one typed table; `proc`: readings of Linux's /proc.
 * - `crashPoint`: a SIGKILL at a named moment when `VAE_CRASH_AT` asks for it (the kill tests).
 * - `timeLimit`: the one time limit on a promise; `storage`: output folders and `StorageError`.
 * - `pythonEnv`, `tfjsNodeBuild`: the project's Python venv; building tfjs-node's binding against it.
 * May import: nothing else in `src`.
 */
export * from "./crashPoint";
export * from "./proc";
export * from "./pythonEnv";
export * from "./storage";
export * from "./timeLimit";
