/**
 * Deliberate crashes at named moments, too short to hit with a signal from outside. A run started with
 * `VAE_CRASH_AT=POINT:N` kills itself with SIGKILL the Nth time it reaches POINT (workers count their own);
 * without the variable every call returns at once. The points, in order: `lock-temporary-written` (a lock
 * under its temporary name), `file-temporary-written` (a cache blob, entry or results file flushed under
 * its temporary name), `file-renamed` (that file in place), `entry-written` (a coefficient's entry complete,
 * its lock still held), `coefficient-done` (the lock released, the next coefficient not started).
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
