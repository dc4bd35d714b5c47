/**
 * metav1.Condition conventions as pure functions.
 *
 * - `lastTransitionTime` changes only when `status` changes; a new reason, message or
 *   observedGeneration alone keeps it (so "since when" stays true).
 * - `reason` is a CamelCase token (the API server's CRD validation of metav1.Condition rejects
 *   others); `message` is capped at the 32768 characters the schema allows.
 * - Functions return a new array and never mutate their input. A merge patch replaces arrays
 *   whole, so send the whole array they return.
 */

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339, seconds precision, as metav1.Time serializes. */
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ConditionUpdate = Omit<Condition, "lastTransitionTime">;

const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const MAX_MESSAGE = 32_768;

/** metav1.Time's wire format: RFC 3339 in UTC without fractional seconds. */
export function formatTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/**
 * Sets `update.type` to `update`, keeping the position of an existing condition of that type and
 * its lastTransitionTime when the status is unchanged; a new type is appended.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date,
): Condition[] {
  if (!REASON.test(update.reason) || update.reason.length > 1024) {
    throw new Error(
      `condition ${update.type}: reason "${update.reason}" must be a CamelCase token of at most 1024 characters (letters, digits, _ , :)`,
    );
  }
  const existing = findCondition(conditions, update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    ...(update.observedGeneration === undefined ? {} : { observedGeneration: update.observedGeneration }),
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : formatTime(now),
    reason: update.reason,
    message:
      update.message.length > MAX_MESSAGE ? `${update.message.slice(0, MAX_MESSAGE - 1)}…` : update.message,
  };
  const list = conditions ?? [];
  return existing ? list.map((c) => (c.type === update.type ? next : c)) : [...list, next];
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
