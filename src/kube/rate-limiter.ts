import { TokenBucket } from "../runtime/backoff.ts";
import { sleep, systemClock } from "../runtime/clock.ts";
import type { Clock } from "../runtime/clock.ts";

/**
 * The client-side limit on Kubernetes API requests (client-go's `--kube-api-qps`/`--kube-api-burst`
 * token bucket), plus the pause a `429 Too Many Requests` with `Retry-After` asks for.
 *
 * Guarantees:
 * - At most `burst` requests go at once, then `qps` per second on average; a caller always gets a
 *   slot and waits for it (golang.org/x/time/rate `Wait`), so requests are delayed, never refused.
 * - After `pauseFor(ms)` no request starts until the pause ends, including requests that were
 *   already waiting for a token; a longer pause extends a shorter one, never the reverse.
 * - When a pause ends, requests resume at the steady `qps` rate, not with a burst: tokens that
 *   accrued while paused are dropped, because the server has just said it is overloaded.
 * - A caller whose AbortSignal aborts stops waiting at once and gets the signal's reason.
 *
 * Caveats:
 * - The limit is per process (per KubeConfig the clients were built from), as in client-go; it
 *   does not coordinate replicas, which is the API server's Priority and Fairness job.
 * - A token taken by a caller that then aborted is not given back.
 */
export interface RateLimitSettings {
  qps: number;
  burst: number;
  /**
   * The longest pause a Retry-After may impose; longer values are cut to it, so a misbehaving
   * proxy cannot freeze the controller. Default 60 s.
   */
  maxPauseMs?: number;
}

export class RequestRateLimiter {
  readonly #bucket: TokenBucket;
  readonly #clock: Clock;
  readonly #maxPauseMs: number;
  /** Monotonic ms before which no request starts. */
  #pausedUntil = 0;
  /** A pause happened and the bucket has not been emptied since it ended. */
  #drainAfterPause = false;

  constructor(settings: RateLimitSettings, clock: Clock = systemClock) {
    this.#bucket = new TokenBucket({ qps: settings.qps, burst: settings.burst }, clock);
    this.#clock = clock;
    this.#maxPauseMs = settings.maxPauseMs ?? 60_000;
  }

  /** Resolves when the caller may send one request. */
  async acquire(signal?: AbortSignal): Promise<void> {
    await this.#waitOutPause(signal);
    let waitMs = this.#bucket.reserve();
    if (this.#drainAfterPause) {
      // TokenBucket (shared with the work queue) has no reset: emptying it by reserving until a
      // token is in the future is the same thing, bounded by `burst` iterations.
      this.#drainAfterPause = false;
      while (waitMs === 0) {
        waitMs = this.#bucket.reserve();
      }
    }
    if (waitMs > 0) {
      await sleep(waitMs, signal);
      throwIfAborted(signal);
    }
    // A 429 seen by another request while this one waited for its token holds this one too.
    await this.#waitOutPause(signal);
  }

  /** Holds every request for `ms` from now (capped at `maxPauseMs`). */
  pauseFor(ms: number): void {
    const until = this.#clock.monotonic() + Math.min(Math.max(0, ms), this.#maxPauseMs);
    if (until > this.#pausedUntil) {
      this.#pausedUntil = until;
      this.#drainAfterPause = true;
    }
  }

  /** Milliseconds left in the current pause; 0 when not paused. */
  pausedForMs(): number {
    return Math.max(0, this.#pausedUntil - this.#clock.monotonic());
  }

  async #waitOutPause(signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    for (let remaining = this.pausedForMs(); remaining > 0; remaining = this.pausedForMs()) {
      await sleep(remaining, signal);
      throwIfAborted(signal);
    }
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/**
 * The delay a `Retry-After` header asks for, in ms: delay-seconds or an HTTP-date (RFC 9110
 * §10.2.3). Undefined when the header is absent or unreadable.
 */
export function retryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) {
    return undefined;
  }
  const text = header.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }
  // Every HTTP-date form starts with a day name; Date.parse alone would read "-5" as a year.
  const at = /^[A-Za-z]/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
