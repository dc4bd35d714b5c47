import { invalidSchedule } from "./errors.ts";
import { describeField, type FieldName, type FieldRef } from "./fields.ts";
import { hash32 } from "./hash.ts";

/**
 * The range a bare `H` or `H/n` draws from. Day-of-month stops at 28, as in Jenkins, so a hashed
 * day exists in every month; write `H(1-31)` to opt into the full range.
 */
const HASH_RANGE: Readonly<Record<FieldName, readonly [number, number]>> = {
  second: [0, 59],
  minute: [0, 59],
  hour: [0, 23],
  dayOfMonth: [1, 28],
  month: [1, 12],
  dayOfWeek: [0, 6],
};

const FIELD_LIMITS: Readonly<Record<FieldName, readonly [number, number]>> = {
  second: [0, 59],
  minute: [0, 59],
  hour: [0, 23],
  dayOfMonth: [1, 31],
  month: [1, 12],
  dayOfWeek: [0, 6],
};

const HASH_ITEM = /^H(?:\((\d{1,4})-(\d{1,4})\))?(?:\/(\d{1,4}))?$/;

/**
 * Replaces Jenkins-style `H` items in one field by numbers derived from `hashKey`, so the result is
 * plain cron syntax for cron-parser. Not cron-parser's own `H`, because: its bare `H` in
 * day-of-month can pick the 29th-31st, which months skip (Jenkins uses 1-28); every `H` of a field
 * gets the same value (`H,H` is refused as a duplicate); a step wider than its range silently
 * becomes a single value; and its values come from its PRNG, which a release may change, moving
 * every hashed schedule. Here each item is hashed from (key, field name, item index) with a hash
 * cadent owns (hash.ts), so the times never move unless the key does.
 */
export function resolveHashes(field: FieldRef, hashKey: string): string {
  if (!field.raw.includes("H")) return field.raw;
  const items = field.raw.split(",");
  return items
    .map((item, index) => {
      // THU is a weekday, not a hash.
      if (!(field.name === "dayOfWeek" ? item.replace(/THU/gi, "") : item).includes("H")) return item;
      const m = HASH_ITEM.exec(item);
      if (m === null) {
        throw invalidSchedule(
          `field ${describeField(field)}: '${item}' is not a valid hashed value (write H, H/n, H(a-b) or H(a-b)/n)`,
        );
      }
      const [limitMin, limitMax] = FIELD_LIMITS[field.name];
      let [min, max] = HASH_RANGE[field.name];
      if (m[1] !== undefined && m[2] !== undefined) {
        min = Number(m[1]);
        max = Number(m[2]);
        if (min < limitMin || max > limitMax) {
          throw invalidSchedule(
            `field ${describeField(field)}: range ${min}-${max} in '${item}' is out of range ${limitMin}-${limitMax}`,
          );
        }
        if (min > max) {
          throw invalidSchedule(
            `field ${describeField(field)}: '${item}' is a reversed range (write the smaller value first)`,
          );
        }
      }
      const span = max - min + 1;
      const seed = hash32(`${hashKey}\u0000${field.name}\u0000${index}`);
      if (m[3] === undefined) return String(min + (seed % span));
      const step = Number(m[3]);
      if (step < 1 || step > span) {
        throw invalidSchedule(
          `field ${describeField(field)}: step ${step} in '${item}' must be between 1 and the width of the range ${min}-${max} (${span})`,
        );
      }
      const values: number[] = [];
      for (let v = min + (seed % step); v <= max; v += step) values.push(v);
      return values.join(",");
    })
    .join(",");
}
