/**
 * A time limit on a promise: what the notebook runner (a cell), the figure renderer (a PNG) and the
 * threaded wasm start-up (`src/backend/wasmThreads.ts`) use so that nothing waits forever.
 */

/**
 * Settles as `work` does, or, when `ms` passes first, as `onTimeout` does (with its value, or with what
 * it throws). `ms` <= 0 means no limit. The timer never outlives the race.
 */
export async function withTimeLimit<T, U = never>(work: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  if (!(ms > 0)) return work;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    }, ms);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}
