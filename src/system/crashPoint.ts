/**
 * Deliberate crashes at named moments. A run started with `VAE_CRASH_AT=POINT:N` kills itself with
 * SIGKILL the Nth time it reaches POINT, so that tests can stop a sweep exactly in the middle of a
 * cache write or between two coefficients, moments too short to hit with a signal from outside.
 * Without the variable every call returns at once. Worker processes inherit the variable and count
 * their own visits.
 *
 * The points, as the code reaches them: `lock-temporary-written` (a lock file written under its
 * temporary name, not yet in place), `file-temporary-written` (a cache blob, entry or results file
 * written and flushed under its temporary name, not yet renamed), `file-renamed` (that file in place),
 * `entry-written` (a coefficient's entry complete, its lock still held), `coefficient-done` (the lock
 * released, the next coefficient not started).
 */
import { option, OPTIONS } from "./options";

export const CRASH_ENV = OPTIONS.crashAt.name;

const reached = new Map<string, number>();

/** Kills this process with SIGKILL if `VAE_CRASH_AT` names this point and this is its Nth visit. */
export function crashPoint(point: string): void {
  const spec = option("crashAt");
  if (!spec) return;
  const [name, nth = "1"] = spec.split(":");
  if (name !== point) return;
  const count = (reached.get(point) ?? 0) + 1;
  reached.set(point, count);
  if (count === Number(nth)) process.kill(process.pid, "SIGKILL");
}
