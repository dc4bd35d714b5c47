import { hashFraction } from "./hash.ts";

/**
 * A stable per-object delay in [0, jitterSeconds) seconds, in milliseconds, that never reaches the
 * next nominal fire time. The delay is the same fraction of the window for every run of an object
 * (hashed from `key`), so runs stay evenly spaced; when the next fire time is closer than
 * `jitterSeconds`, the window shrinks to that gap rather than piling every object up at its end.
 *
 * @param key a stable key of the object (its uid or namespace/name).
 * @param nominal the scheduled time (the run's name and `cadent.dev/scheduled-time`).
 * @param nextNominal the fire time after `nominal`, or null when there is none.
 */
export function jitterOffsetMs(
  key: string,
  jitterSeconds: number,
  nominal: Date,
  nextNominal: Date | null,
): number {
  if (!Number.isFinite(jitterSeconds) || jitterSeconds <= 0) return 0;
  let window = jitterSeconds * 1000;
  if (nextNominal !== null) window = Math.min(window, nextNominal.getTime() - nominal.getTime());
  if (!(window > 0)) return 0;
  return Math.floor(hashFraction(`jitter\u0000${key}`) * window);
}
