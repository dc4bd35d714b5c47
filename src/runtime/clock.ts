/**
 * Time as the runtime sees it, injectable so tests can drive it.
 *
 * Two clocks on purpose: wall time (`now`) is only written into objects for humans and other
 * tools (Lease renewTime, Event timestamps, condition lastTransitionTime); every decision about
 * elapsed time (lease expiry, renew deadline, watch inactivity, backoff) uses `monotonic`, which
 * never jumps when NTP or an operator sets the system clock.
 *
 * Timers are the global `setTimeout`/`clearTimeout`, so vitest's fake timers drive both the
 * timers and `systemClock` (they fake `Date` and `performance` too).
 */
export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch. */
  now(): number;
  /** Milliseconds from an arbitrary origin; never goes backwards. */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

/**
 * The longest delay `setTimeout` honours: 2^31 - 1 ms, about 24.8 days. Node runs a longer timeout
 * after 1 ms (with a TimeoutOverflowWarning), so a requeue at a monthly or yearly schedule's next
 * run would spin. Timers cap their delay at this, and when they fire early they wait again (the
 * work queue) or find nothing due yet (a PeriodicTask's fire timer).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
