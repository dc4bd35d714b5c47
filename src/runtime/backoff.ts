import type { Clock } from "./clock.ts";

/** Options of {@link ExponentialBackoff}. */
export interface BackoffPolicy {
  /** The first delay. */
  initialMs: number;
  /** The ceiling of the un-jittered delay. */
  maxMs: number;
  /** Growth per attempt; 2 unless told. */
  factor?: number;
  /**
   * Adds up to `jitter × delay` at random (client-go's `wait.Jitter`), so replicas that failed
   * together do not retry together. 0 disables it.
   */
  jitter?: number;
}

/**
 * Jittered exponential backoff: initial, initial×factor, … capped at max, then jittered.
 * Not thread-safe by design (one owner); `reset()` after a sign of health.
 */
export class ExponentialBackoff {
  readonly #policy: Required<BackoffPolicy>;
  readonly #random: () => number;
  #attempts = 0;

  constructor(policy: BackoffPolicy, random: () => number = Math.random) {
    this.#policy = { factor: 2, jitter: 0, ...policy };
    this.#random = random;
  }

  /** The delay before the next attempt; each call counts one failure. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.#policy;
    const base = Math.min(maxMs, initialMs * factor ** this.#attempts);
    this.#attempts += 1;
    return base * (1 + jitter * this.#random());
  }

  reset(): void {
    this.#attempts = 0;
  }

  get attempts(): number {
    return this.#attempts;
  }
}

/**
 * A token bucket with golang.org/x/time/rate `Reserve` semantics: a caller always gets a slot
 * and is told how long to wait for it, so a burst of retries is spread out instead of refused.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(options: { qps: number; burst: number }, clock: Clock) {
    if (!(options.qps > 0) || !(options.burst >= 1)) {
      throw new Error(
        `token bucket needs qps > 0 and burst >= 1, got qps=${options.qps} burst=${options.burst}`,
      );
    }
    this.#qps = options.qps;
    this.#burst = options.burst;
    this.#clock = clock;
    this.#tokens = options.burst;
    this.#last = clock.monotonic();
  }

  /** Takes one token and returns the milliseconds to wait before using it (0 when available). */
  reserve(): number {
    const now = this.#clock.monotonic();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }
}
