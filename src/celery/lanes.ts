/**
 * kombu's Redis priority emulation: one list per (queue, priority step).
 *
 * Priorities 0..9 fall into four lanes: 0-2 → `<queue>`, 3-5 → `<queue>\x06\x163`,
 * 6-8 → `<queue>\x06\x166`, 9 → `<queue>\x06\x169`. A worker pops the lanes in step order, so on Redis
 * the LOWER number is consumed first — the opposite of AMQP, and of what the word "priority" suggests.
 */

/** kombu's `Channel.sep`, between a queue name and its priority step (and inside binding members). */
export const LANE_SEPARATOR = "\x06\x16";

/** kombu's `PRIORITY_STEPS`. */
export const PRIORITY_STEPS: readonly number[] = [0, 3, 6, 9];

export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 9;

/**
 * The priority kombu uses for a message: `int()` of the value, clamped to 0..9, and 0 when it is
 * missing or not a number (`_get_message_priority`).
 */
export function clampPriority(priority: unknown): number {
  let n: number;
  if (typeof priority === "number") n = priority;
  else if (typeof priority === "boolean") n = priority ? 1 : 0;
  else if (typeof priority === "string" && /^\s*[+-]?\d+\s*$/.test(priority)) n = Number(priority);
  else return MIN_PRIORITY;
  if (!Number.isFinite(n)) return MIN_PRIORITY;
  return Math.max(MIN_PRIORITY, Math.min(MAX_PRIORITY, Math.trunc(n)));
}

/** The lane a priority falls into: the largest step not above it (`bisect(steps, n) - 1`). */
export function priorityStep(priority: unknown): number {
  const clamped = clampPriority(priority);
  let step = PRIORITY_STEPS[0] ?? 0;
  for (const candidate of PRIORITY_STEPS) if (candidate <= clamped) step = candidate;
  return step;
}

/** The Redis list a message of this priority is pushed onto (`_q_for_pri`). */
export function queueKey(queue: string, priority: unknown = 0): string {
  const step = priorityStep(priority);
  return step === 0 ? queue : `${queue}${LANE_SEPARATOR}${step}`;
}

/**
 * The keys of the worker's `BRPOP`, priority step first, then queue, as kombu builds them:
 * `q1 q2 q1\x06\x163 q2\x06\x163 … q1\x06\x169 q2\x06\x169`. kombu rotates the queue order after each
 * delivery so that no queue starves another within a lane; a caller that wants the same fairness
 * passes the queues in its current rotation.
 */
export function brpopKeys(queues: readonly string[]): string[] {
  return PRIORITY_STEPS.flatMap((step) => queues.map((queue) => queueKey(queue, step)));
}

/** The queue a popped list key belongs to: the key without its lane suffix (`rsplit(sep, 1)[0]`). */
export function queueOfKey(key: string): string {
  const at = key.lastIndexOf(LANE_SEPARATOR);
  return at === -1 ? key : key.slice(0, at);
}
