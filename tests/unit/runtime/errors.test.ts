import { describe, expect, it } from "vitest";
import {
  apiErrorCode,
  describeApiError,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  isTooManyRequests,
} from "../../../src/runtime/errors.ts";
import { apiError } from "./fakes.ts";

describe("API error helpers", () => {
  it.each([
    { name: "ApiException 404 NotFound", err: apiError(404, "NotFound"), code: 404, is: ["notFound"] },
    {
      name: "ApiException 409 Conflict (stale resourceVersion)",
      err: apiError(409, "Conflict"),
      code: 409,
      is: ["conflict"],
    },
    {
      name: "ApiException 409 AlreadyExists (create)",
      err: apiError(409, "AlreadyExists"),
      code: 409,
      is: ["alreadyExists"],
    },
    {
      name: "ApiException 429 TooManyRequests",
      err: apiError(429, "TooManyRequests"),
      code: 429,
      is: ["tooManyRequests"],
    },
    {
      name: "a Watch HTTP error with statusCode 410",
      err: Object.assign(new Error("Gone"), { statusCode: 410 }),
      code: 410,
      is: ["gone"],
    },
    {
      name: "a watch ERROR event Status with code 410",
      err: { kind: "Status", code: 410, reason: "Expired" },
      code: 410,
      is: ["gone"],
    },
    {
      name: "a Node network error (string code)",
      err: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      code: undefined,
      is: [],
    },
    { name: "a thrown string", err: "boom", code: undefined, is: [] },
  ])("$name → code $code", ({ err, code, is }) => {
    expect(apiErrorCode(err)).toBe(code);
    const verdicts = {
      notFound: isNotFound(err),
      conflict: isConflict(err),
      alreadyExists: isAlreadyExists(err),
      gone: isGone(err),
      tooManyRequests: isTooManyRequests(err),
    };
    expect(
      Object.entries(verdicts)
        .filter(([, v]) => v)
        .map(([k]) => k),
    ).toEqual(is);
  });

  it("describes an ApiException by the API server's message, not by its headers", () => {
    const err = apiError(
      409,
      "Conflict",
      'Operation cannot be fulfilled on leases "x": the object has been modified',
    );
    expect(describeApiError(err)).toBe(
      'HTTP 409 Conflict: Operation cannot be fulfilled on leases "x": the object has been modified',
    );
  });

  it.each([
    {
      name: "a watch ERROR event's Status",
      err: { code: 410, reason: "Expired", message: "too old resource version: 5 (917)" },
      described: "HTTP 410 Expired: too old resource version: 5 (917)",
    },
    {
      name: "a Watch HTTP error, by its status text",
      err: Object.assign(new Error("Service Unavailable"), { statusCode: 503 }),
      described: "HTTP 503: Service Unavailable",
    },
  ])("describes $name by what the API server said", ({ err, described }) => {
    expect(describeApiError(err)).toBe(described);
  });
});
