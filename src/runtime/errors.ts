import { ApiException } from "@kubernetes/client-node";

/**
 * Reading Kubernetes API errors as client-node 2.0.x raises them.
 *
 * - The generated APIs throw `ApiException` with the HTTP status in `.code` and the response body
 *   in `.body` as the raw JSON *text* of a `Status` (ResponseContext.getBodyAsAny returns text), so
 *   the `reason` has to be parsed out of a string.
 * - `Watch` raises a plain `Error` with `.statusCode`; a watch `ERROR` event carries a `Status`
 *   object with `.code`.
 * All three are recognised here so callers can branch on 404/409/410/429 on purpose.
 */

/** The HTTP status code of a Kubernetes API error, or undefined for anything else (network errors…). */
export function apiErrorCode(err: unknown): number | undefined {
  if (err instanceof ApiException) {
    return typeof err.code === "number" ? err.code : undefined;
  }
  if (typeof err !== "object" || err === null) {
    return undefined;
  }
  if ("statusCode" in err && typeof err.statusCode === "number") {
    return err.statusCode;
  }
  // Node system errors use `code` for strings such as "ECONNREFUSED"; only a number is an HTTP status.
  if ("code" in err && typeof err.code === "number") {
    return err.code;
  }
  return undefined;
}

/**
 * The `Status` the API server sent with an error, if it can be read: an ApiException's body, or
 * the error itself when it is a Status (a watch `ERROR` event) or a Watch HTTP error, whose
 * `message` is the status text.
 */
export function apiErrorStatus(err: unknown): { reason?: string; message?: string } | undefined {
  if (typeof err !== "object" || err === null) {
    return undefined;
  }
  let body: unknown = "body" in err ? err.body : apiErrorCode(err) === undefined ? undefined : err;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (typeof body !== "object" || body === null) {
    return undefined;
  }
  const status: { reason?: string; message?: string } = {};
  if ("reason" in body && typeof body.reason === "string") {
    status.reason = body.reason;
  }
  if ("message" in body && typeof body.message === "string") {
    status.message = body.message;
  }
  return status;
}

/**
 * A one-line description for logs and Events: the API server's own message when there is one,
 * instead of ApiException's message, which embeds every response header.
 */
export function describeApiError(err: unknown): string {
  const code = apiErrorCode(err);
  const status = apiErrorStatus(err);
  if (code !== undefined) {
    return `HTTP ${code}${status?.reason ? ` ${status.reason}` : ""}: ${status?.message ?? "no message from the API server"}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function isNotFound(err: unknown): boolean {
  return apiErrorCode(err) === 404;
}

/** 409 from a write whose resourceVersion is stale (optimistic concurrency), not from a create. */
export function isConflict(err: unknown): boolean {
  return apiErrorCode(err) === 409 && apiErrorStatus(err)?.reason !== "AlreadyExists";
}

/** 409 from a create whose name is taken. */
export function isAlreadyExists(err: unknown): boolean {
  return apiErrorCode(err) === 409 && apiErrorStatus(err)?.reason === "AlreadyExists";
}

/** 410: the resourceVersion asked for is older than etcd's compaction; relist. */
export function isGone(err: unknown): boolean {
  return apiErrorCode(err) === 410;
}

/** 429: throttled by API Priority and Fairness; retry later. */
export function isTooManyRequests(err: unknown): boolean {
  return apiErrorCode(err) === 429;
}
