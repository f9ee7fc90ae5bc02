/**
 * Long work on the main thread in slices: after each slice the event loop gets a turn, so xDS
 * streams and the admin endpoint are answered while a large commit compiles.
 */

/** How long one slice may run; a stream waits at most about this long for its turn. */
export const SLICE_MS = 20;

/** Resolves after the event loop has handled what is pending (I/O included). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs `steps` to the end, giving the event loop a turn whenever a slice has taken `sliceMs`. */
export async function runInSlices<T>(steps: Generator<void, T>, sliceMs = SLICE_MS): Promise<T> {
  let deadline = performance.now() + sliceMs;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() < deadline) continue;
    await nextTurn();
    deadline = performance.now() + sliceMs;
  }
}
