// Polling with a deadline: tests wait for a condition, never for a fixed time.

export interface WaitOptions {
  timeoutMs?: number; // default 10 s
  intervalMs?: number; // default 50 ms
  what: string; // named in the timeout error: "peer b to appear in `vine peers`"
}

/**
 * Call `fn` until it returns a value that is not undefined, null or false, and return that value.
 * A throw from `fn` counts as "not yet". On timeout, throws naming `what` and the last value or error.
 */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: WaitOptions,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  let lastError: unknown = undefined;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false) return value;
      last = value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await Bun.sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const detail = lastError !== undefined ? `last error: ${String(lastError)}` : `last value: ${describe(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}; ${detail}`);
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}
