/**
 * `src/system`: small helpers about the process, not about VAEs.
 *
 * - `proc.ts`: readings of Linux's /proc (a process's state, start time, CPU time, threads), for stale
 *   locks and a stuck kernel's report.
 * - `crashPoint.ts`: `crashPoint`, a SIGKILL at a named moment when `VAE_CRASH_AT` asks for it (the
 *   tests' repeated kills).
 * - `timeLimit.ts`: `withTimeLimit`, the one time limit on a promise (a notebook cell, a PNG, the threaded
 *   wasm start-up).
 *
 * - `storage.ts`: `checkOutputFolder` (an output folder made and probed with a write, within a time
 *   limit), `makeFolder`, and `StorageError`, the one message for an operating-system error on a path.
 *
 * May import: nothing else in `src`.
 */
export * from "./crashPoint";
export * from "./proc";
export * from "./pythonEnv";
export * from "./storage";
export * from "./timeLimit";
