/**
 * A handler's value that JSON.stringify can write but Celery's encoder cannot (it recurses deeper
 * per level): the message must still be answered and acknowledged, never left in the books.
 */
import { describe, expect, it } from "vitest";
import { decodeResult, decodeTaskMessage, pythonJsonDumps } from "../../../src/celery/index.ts";
import type { JsonValue, TaskMessage } from "../../../src/celery/index.ts";
import { TaskError, recordError } from "../../../src/worker/errors.ts";
import { failed, succeeded } from "../../../src/worker/outcomes.ts";

const message: TaskMessage = (() => {
  const decoded = decodeTaskMessage(
    JSON.stringify({
      body: JSON.stringify([[], {}, {}]),
      "content-type": "application/json",
      headers: { task: "app.tasks.deep", id: "d0000000-0000-4000-8000-000000000001" },
      properties: { delivery_tag: "tag-deep", delivery_info: { exchange: "", routing_key: "celery" } },
    }),
  );
  if (!decoded.ok) throw new Error(decoded.error.reason);
  return decoded.message;
})();
const writer = { hostname: "w@test", pid: 1, now: new Date("2026-12-01T06:00:00Z") };

/** Nested arrays `depth` deep: JSON.stringify writes them, the Python-compatible encoder does not. */
function deepArrays(depth: number): JsonValue[] {
  let value: JsonValue[] = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}
const DEEP = deepArrays(3_500);

describe("a value nested deeper than the result encoder can write", () => {
  it("is such a value (the premise: JSON.stringify takes it, pythonJsonDumps overflows)", () => {
    expect(() => JSON.stringify(DEEP)).not.toThrow();
    expect(() => pythonJsonDumps(DEEP)).toThrow(RangeError);
  });

  it.each([
    { outcome: "returned", request: () => succeeded(message, writer, DEEP) },
    {
      outcome: "thrown in a TaskError's args",
      request: () => failed(message, writer, recordError(new TaskError("DeepError", [DEEP]))),
    },
  ])("is answered FAILURE EncodeError and acknowledged when $outcome", ({ request }) => {
    const written = request();
    expect(written.ack).toBe("tag-deep");
    const decoded = decodeResult(written.result?.value ?? "");
    expect(decoded.ok && decoded.meta.kind === "failure" ? decoded.meta.exception?.type : null).toBe(
      "EncodeError",
    );
  });
});
