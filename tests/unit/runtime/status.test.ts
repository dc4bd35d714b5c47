import { describe, expect, it } from "vitest";
import {
  CustomObjectsApi,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import type { KubernetesObject, RequestContext } from "@kubernetes/client-node";
import {
  applyStatus,
  mergePatchStatus,
  updateStatusWithRetry,
  writeWithConflictRetry,
} from "../../../src/runtime/status.ts";
import type { CustomResourceRef } from "../../../src/runtime/status.ts";
import { apiError } from "./fakes.ts";

// These tests run client-node's real generated CustomObjectsApi against an in-process HTTP
// stand-in, so they check the bytes client-node would put on the wire (content type, query, body).

interface SentRequest {
  method: string;
  url: URL;
  contentType: string | undefined;
  body: unknown;
}

const ref: CustomResourceRef = {
  group: "cadent.dev",
  version: "v1alpha1",
  plural: "periodictasks",
  namespace: "team-a",
  name: "nightly",
};

/** One PeriodicTask behind a minimal API server: GET and PATCH of /status, with resourceVersion checks. */
function fakeApiServer(options: { concurrentWriters?: number } = {}) {
  let object: KubernetesObject & { status?: Record<string, unknown> } = {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "PeriodicTask",
    metadata: { name: "nightly", namespace: "team-a", resourceVersion: "5" },
    status: { lastScheduleTime: "2030-01-01T00:00:00Z" },
  };
  let concurrentWriters = options.concurrentWriters ?? 0;
  const sent: SentRequest[] = [];
  const bump = (): void => {
    object = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(Number(object.metadata?.resourceVersion) + 1) },
    };
  };
  const respond = (code: number, body: unknown): ResponseContext =>
    new ResponseContext(
      code,
      { "content-type": "application/json" },
      new SelfDecodingBody(Promise.resolve(Buffer.from(JSON.stringify(body)))),
    );
  const send = async (request: RequestContext): Promise<ResponseContext> => {
    const raw = request.getBody();
    const body: unknown = typeof raw === "string" ? JSON.parse(raw) : undefined;
    const headers = request.getHeaders();
    sent.push({
      method: request.getHttpMethod(),
      url: new URL(request.getUrl()),
      contentType: headers["Content-Type"],
      body,
    });
    if (request.getHttpMethod() === "GET") {
      return respond(200, object);
    }
    if (concurrentWriters > 0) {
      concurrentWriters -= 1;
      bump();
    }
    const patch = body as { metadata?: { resourceVersion?: string }; status?: Record<string, unknown> };
    const expected = patch.metadata?.resourceVersion;
    if (expected !== undefined && expected !== object.metadata?.resourceVersion) {
      const status = JSON.parse(apiError(409, "Conflict").body) as unknown;
      return respond(409, status);
    }
    object = { ...object, status: { ...object.status, ...patch.status } };
    bump();
    return respond(200, object);
  };
  const api = new CustomObjectsApi(
    createConfiguration({
      baseServer: new ServerConfiguration("https://apiserver.test", {}),
      httpApi: wrapHttpLibrary({ send }),
    }),
  );
  return { api, sent, current: () => object };
}

describe("status writes", () => {
  it("merge-patches the status subresource as application/merge-patch+json", async () => {
    const server = fakeApiServer();
    await mergePatchStatus(server.api, ref, { conditions: [] });
    expect(server.sent).toEqual([
      {
        method: "PATCH",
        url: new URL(
          "https://apiserver.test/apis/cadent.dev/v1alpha1/namespaces/team-a/periodictasks/nightly/status?fieldManager=cadent",
        ),
        contentType: "application/merge-patch+json",
        body: { status: { conditions: [] } },
      },
    ]);
  });

  it("makes the merge patch conditional when given a resourceVersion", async () => {
    const server = fakeApiServer();
    await mergePatchStatus(server.api, ref, { phase: "Active" }, { resourceVersion: "5" });
    expect(server.sent[0]?.body).toEqual({ metadata: { resourceVersion: "5" }, status: { phase: "Active" } });
  });

  it("server-side applies the status as field manager cadent, forcing ownership", async () => {
    const server = fakeApiServer();
    await applyStatus(server.api, { ...ref, kind: "PeriodicTask" }, { phase: "Active" });
    const request = server.sent[0];
    expect(request?.contentType).toBe("application/apply-patch+yaml");
    expect(Object.fromEntries(request?.url.searchParams ?? [])).toEqual({
      fieldManager: "cadent",
      force: "true",
    });
    expect(request?.body).toEqual({
      apiVersion: "cadent.dev/v1alpha1",
      kind: "PeriodicTask",
      metadata: { name: "nightly", namespace: "team-a" },
      status: { phase: "Active" },
    });
  });

  it("client-node itself would send a JSON patch: the reason every write sets the content type", async () => {
    const server = fakeApiServer();
    await server.api
      .patchNamespacedCustomObjectStatus({ ...ref, body: { status: {} } })
      .catch(() => undefined);
    expect(server.sent[0]?.contentType).toBe("application/json-patch+json");
  });

  describe("updateStatusWithRetry", () => {
    it("on 409 re-reads the object and rebuilds the status from the latest version", async () => {
      const server = fakeApiServer({ concurrentWriters: 1 });
      const builtFrom: (string | undefined)[] = [];
      const written = await updateStatusWithRetry(server.api, ref, (latest) => {
        builtFrom.push(latest.metadata?.resourceVersion);
        return { observedVersion: latest.metadata?.resourceVersion };
      });
      expect(builtFrom).toEqual(["5", "6"]);
      expect(server.sent.map((r) => r.method)).toEqual(["GET", "PATCH", "GET", "PATCH"]);
      expect(server.sent[3]?.body).toEqual({
        metadata: { resourceVersion: "6" },
        status: { observedVersion: "6" },
      });
      expect(written.metadata?.resourceVersion).toBe("7");
    });

    it("starts from a cached copy when given one, saving the first read", async () => {
      const server = fakeApiServer();
      await updateStatusWithRetry(server.api, ref, () => ({ phase: "Active" }), {
        initial: server.current(),
      });
      expect(server.sent.map((r) => r.method)).toEqual(["PATCH"]);
    });

    it("writes nothing when the build says nothing changed", async () => {
      const server = fakeApiServer();
      await updateStatusWithRetry(server.api, ref, () => undefined);
      expect(server.sent.map((r) => r.method)).toEqual(["GET"]);
    });

    it("gives up after the attempts are spent, saying why", async () => {
      const server = fakeApiServer({ concurrentWriters: 10 });
      await expect(
        updateStatusWithRetry(server.api, ref, () => ({ phase: "Active" }), { attempts: 3 }),
      ).rejects.toThrow(/gave up writing PeriodicTask team-a\/nightly after 3 conflicts/);
      expect(server.sent.filter((r) => r.method === "PATCH")).toHaveLength(3);
    });
  });

  it("writeWithConflictRetry lets errors other than a conflict through at once", async () => {
    let writes = 0;
    const notFound = apiError(404, "NotFound");
    await expect(
      writeWithConflictRetry({
        read: async () => ({ metadata: { name: "x", resourceVersion: "1" } }),
        build: () => ({ data: {} }),
        write: async () => {
          writes += 1;
          throw notFound;
        },
      }),
    ).rejects.toBe(notFound);
    expect(writes).toBe(1);
  });
});
