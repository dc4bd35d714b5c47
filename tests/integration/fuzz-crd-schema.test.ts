/**
 * Fuzzing the API's two gatekeepers against each other (issue #8): generated Task and
 * PeriodicTask objects, valid and nearly valid (lengths at their bounds, wrong types, both
 * executors or none, eta with countdown, priorities out of range, times with odd offsets, strings
 * beyond the Basic Multilingual Plane), are judged by the zod schemas (src/api) and sent to the real
 * API server with dryRun=All. zod accepts ⇔ the API server accepts:
 *
 * - the API server accepts what zod refuses: the controller could not read an object kubectl
 *   stored (it would report it invalid, or skip it);
 * - zod accepts what the API server refuses: cadent's own idea of a valid object is wrong.
 *
 * Documented exceptions, which are not disagreements:
 * - the API server drops null values of fields that are not nullable before it validates
 *   (Kubernetes' CRD defaulting rules); zod refuses them. Such an object passes when zod accepts
 *   what the server would store;
 * - whether a schedule can fire and whether a time zone exists are the controller's to judge
 *   (Ready=False, InvalidSchedule / UnknownTimeZone): both gatekeepers accept those objects.
 *
 * An object both accept must also come back from the server with the spec zod makes of it
 * (defaults and pruning agree). `CADENT_FUZZ_RUNS` sets the number of generated objects (default
 * 300; the pinned objects come on top); `CADENT_FUZZ_SEED` replays a run.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePeriodicTask, parseTask, type Parsed } from "../../src/api/parse.ts";
import { CELERY_PROTOCOL_HEADERS } from "../../src/api/task.ts";
import { periodicTask, task, type Manifest } from "../fixtures/api-manifests.ts";
import { GROUP, VERSION, installCrds } from "../support/cadent.ts";
import { createTestNamespace, k8s, kubeConfig } from "../support/kube.ts";
import { reportCases, sampleCases } from "../unit/fuzz/support.ts";

const INT32_MAX = 2_147_483_647;

// ---------------------------------------------------------------------------------------------
// Fields: values both gatekeepers must accept, and values at and past the edges
//
// An object is made of valid values, then one to three of its fields are replaced by edge values
// (half of the objects stay as they are): most objects are then a step or two from valid, which is
// where two validators drift apart.

interface Field {
  /** Values that are valid on their own (a combination may still be refused). */
  readonly valid: fc.Arbitrary<unknown>;
  /** Values at and past the edges: bounds, wrong types, malformed text. */
  readonly edge: fc.Arbitrary<unknown>;
  /** How often a valid object has the field: 1 in `present` (1: always). */
  readonly present: number;
}

const field = (valid: fc.Arbitrary<unknown>, edge: fc.Arbitrary<unknown>, present = 2): Field => ({
  valid,
  edge,
  present,
});

const WRONG_TYPES = fc.constantFrom<unknown>(true, "5", 1.5, [], {}, -1);

/** An integer field in [min, max]. */
const intField = (min: number, max: number, present = 2): Field =>
  field(
    fc.oneof(fc.integer({ min, max: Math.min(max, min + 1000) }), fc.constantFrom(min, max)),
    fc.oneof(fc.constantFrom<unknown>(min - 1, max + 1, 1e20, -0.5, 2.5), WRONG_TYPES),
    present,
  );

/** `n` characters: astral ones are one character to Kubernetes (runes), two to JavaScript (UTF-16). */
const lengths = (max: number, valid: fc.Arbitrary<string>): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc
      .tuple(fc.constantFrom("x", "é", "😀"), fc.constantFrom(max, max + 1, Math.floor(max / 2) + 1))
      .map(([unit, n]) => unit.repeat(n)),
    valid,
  );

const RFC3339 = fc.oneof(
  fc.constantFrom(
    "2026-12-01T06:00:00Z",
    "2026-12-01T06:00:00+08:00",
    "2026-12-01T06:00:00.123456789Z",
    "2026-12-01t06:00:00z",
    "2028-02-29T23:59:59-05:30",
  ),
  fc
    .date({
      min: new Date("0001-01-01T00:00:00Z"),
      max: new Date("9999-12-31T23:59:59Z"),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
);

/**
 * Times written as lists: the API server stored them while time fields declared `format: date-time`
 * (its type check lets a list through a string field with a format; see src/api/fields.ts).
 */
const TIME_LISTS: readonly unknown[] = [[], [1], ["2026-12-01T06:00:00Z"]];

/** Times an RFC 3339 reader refuses, and some a lenient one might not. */
const NOT_RFC3339 = fc.oneof(
  fc.constantFrom<unknown>(
    "tomorrow",
    "2026-12-01T06:00:00",
    "2026-12-01 06:00:00Z",
    "2026-12-01T06:00Z",
    "2026-13-01T06:00:00Z",
    "2027-02-29T06:00:00Z",
    "2026-12-01T24:00:00Z",
    "2026-12-01T06:00:60Z",
    "2026-12-01T06:00:00+24:00",
    "2026-12-01T06:00:00+99:99",
    "2026-12-01T06:00:00,5Z",
    "2026-12-01T06:00:00x5Z",
    "2026-12-01T06:00:00Zt",
    "2026-12-01T06:00:00ZTrailing",
    "2026-12-01T06:00:00.Z",
    "12026-12-01T06:00:00Z",
    "0000-01-01T00:00:00Z",
    `2026-12-01T06:00:00.${"1".repeat(43)}Z`,
    `2026-12-01T06:00:00.${"1".repeat(44)}Z`,
    "",
    1_796_104_860,
  ),
  fc.constantFrom(...TIME_LISTS),
  WRONG_TYPES,
);

const json = fc.jsonValue({ maxDepth: 2 });
const entries = (n: number, value: (i: number) => unknown = (i) => i) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value(i)]));

const POD_SPEC = { restartPolicy: "Never", containers: [{ name: "main", image: "busybox:1.36" }] };

const templateMetadata = field(
  fc.record(
    {
      labels: fc.dictionary(fc.constantFrom("team", "app", "tier"), fc.string({ maxLength: 10 }), {
        maxKeys: 2,
      }),
      annotations: fc.dictionary(fc.constantFrom("note", "owner"), fc.string({ maxLength: 20 }), {
        maxKeys: 2,
      }),
    },
    { requiredKeys: [] },
  ),
  fc.oneof(
    lengths(63, fc.constant("v")).map((v) => ({ labels: { team: v } })),
    lengths(8192, fc.constant("v")).map((v) => ({ annotations: { note: v } })),
    fc.constantFrom(64, 65).map((n) => ({ labels: entries(n, () => "v") })),
    fc.constantFrom<unknown>({ labels: { team: 1 } }, { labels: [] }, "metadata", { name: "dropped" }),
  ),
  3,
);

/** The fields of a Task spec, for either executor. */
const TASK_FIELDS: Record<string, Field> = {
  args: field(
    fc.array(json, { maxLength: 5 }),
    fc.constantFrom<unknown>(Array(64).fill(0), Array(65).fill(0), { a: 1 }, "x", [null, [[]], { "": {} }]),
  ),
  kwargs: field(
    fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 4 }),
    fc.constantFrom<unknown>(entries(64), entries(65), [1], "x", { "": null }),
  ),
  eta: field(RFC3339, NOT_RFC3339, 3),
  countdown: intField(0, INT32_MAX, 3),
  expires: field(
    fc.oneof(fc.integer({ min: 1, max: INT32_MAX }), RFC3339),
    fc.oneof(fc.constantFrom<unknown>(0, INT32_MAX + 1, "3600", 1.5), NOT_RFC3339),
    3,
  ),
  timeoutSeconds: intField(1, INT32_MAX, 3),
  retry: field(
    fc.record(
      {
        limit: fc.integer({ min: 0, max: 100 }),
        backoff: fc.record(
          {
            initialSeconds: fc.integer({ min: 0, max: 600 }),
            factor: fc.oneof(fc.constantFrom(1, 10), fc.double({ min: 1, max: 10, noNaN: true })),
            maxSeconds: fc.integer({ min: 600, max: 86_400 }),
            jitter: fc.boolean(),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ["limit"] },
    ),
    fc.oneof(
      fc.constantFrom<unknown>(
        {},
        { limit: 101 },
        { limit: -1 },
        { limit: 1, backoff: { initialSeconds: 700 } },
        { limit: 1, backoff: { initialSeconds: 86_400, maxSeconds: 86_400 } },
        { limit: 1, backoff: { initialSeconds: 86_401, maxSeconds: 86_400 } },
        { limit: 1, backoff: { factor: 0.5 } },
        { limit: 1, backoff: { factor: 10.5 } },
        { limit: 1, backoff: { maxSeconds: 0 } },
        { limit: 1, backoff: { jitter: "yes" } },
        { limit: 1, backoff: {} },
        "3",
      ),
    ),
    3,
  ),
  ttlSecondsAfterFinished: intField(0, INT32_MAX, 3),
  unknownField: field(fc.constant("pruned by both"), fc.constant({ nested: "pruned too" }), 1),
};

const taskName = fc.oneof(
  fc.constantFrom("app.tasks.add", "a", "_", "A.b:c-d_9"),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.:-]{0,30}$/),
);
const TASK_NAME_EDGES = fc.oneof(
  lengths(255, fc.constantFrom("1abc", "app tasks", "app.tâches", "-x", "")),
  WRONG_TYPES,
);

/** Fields only the Redis executor has. */
const REDIS_FIELDS: Record<string, Field> = {
  queue: field(
    fc.oneof(
      fc.constantFrom("celery", "reports", "a@b:c.d-e", "_q"),
      fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,20}$/),
    ),
    fc.oneof(lengths(200, fc.constantFrom("@x", "a b", "q/x", "")), WRONG_TYPES),
  ),
  priority: intField(0, 9),
  headers: field(
    fc.dictionary(fc.constantFrom("tenant", "x-trace", "Tenant", "a.b"), fc.string({ maxLength: 10 }), {
      maxKeys: 3,
    }),
    fc.oneof(
      fc.constantFrom(...CELERY_PROTOCOL_HEADERS).map((name) => ({ [name]: "x" })),
      fc.constantFrom(32, 33).map((n) => entries(n, () => "v")),
      lengths(1024, fc.constant("v")).map((value) => ({ tenant: value })),
      fc.constantFrom<unknown>([], "tenant=acme", { tenant: 1 }, { "": "empty name" }),
    ),
    3,
  ),
};

const jobTemplate = field(
  templateMetadata.valid.map((metadata) => ({ metadata, spec: { template: { spec: POD_SPEC } } })),
  fc.oneof(
    templateMetadata.edge.map((metadata) => ({ metadata, spec: { template: { spec: POD_SPEC } } })),
    fc.constantFrom<unknown>(
      { spec: {} },
      { spec: { template: {} } },
      { spec: { template: { spec: { containers: "not validated here" } }, backoffLimit: 2 } },
      {},
      "job",
      { spec: { template: { spec: POD_SPEC } }, extra: true },
    ),
  ),
  1,
);

type Spec = Record<string, unknown>;

/**
 * A spec from `fields`: valid values (each field present 1 in `present` times), then, in half the
 * cases, one to three fields replaced by an edge value (or, 1 in 10, removed).
 */
function spec(fields: Record<string, Field>): fc.Arbitrary<Spec> {
  const names = Object.keys(fields);
  const valid = fc.record(
    Object.fromEntries(
      Object.entries(fields).map(([name, f]) => [
        name,
        f.present === 1
          ? f.valid
          : fc.oneof(
              { weight: f.present - 1, arbitrary: fc.constant(undefined) },
              { weight: 1, arbitrary: f.valid },
            ),
      ]),
    ),
  );
  const edit = fc
    .tuple(fc.constantFrom(...names), fc.nat({ max: 9 }))
    .chain(([name, roll]) =>
      (roll === 0 ? fc.constant(undefined) : (fields[name]?.edge ?? fc.constant(undefined))).map(
        (value) => [name, value] as const,
      ),
    );
  return fc
    .tuple(valid, fc.oneof(fc.constant([]), fc.array(edit, { minLength: 1, maxLength: 3 })))
    .map(([values, edits]) => {
      const out: Spec = { ...values };
      for (const [name, value] of edits) out[name] = value;
      return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
    });
}

/** A Task spec: mostly one executor, sometimes both or neither. */
const taskSpec: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 4,
    arbitrary: spec({ ...TASK_FIELDS, ...REDIS_FIELDS, task: field(taskName, TASK_NAME_EDGES, 1) }),
  },
  {
    weight: 3,
    arbitrary: spec({ ...TASK_FIELDS, jobTemplate, task: field(taskName, TASK_NAME_EDGES, 2) }),
  },
  // Both executors' options, or no executor at all.
  {
    weight: 1,
    arbitrary: spec({
      ...TASK_FIELDS,
      ...REDIS_FIELDS,
      jobTemplate,
      task: field(taskName, TASK_NAME_EDGES, 4),
    }),
  },
  { weight: 1, arbitrary: spec(TASK_FIELDS) },
);

/** A name of exactly `length` characters. */
const nameOfLength = (prefix: string, length: number): string =>
  (prefix + "x".repeat(length)).slice(0, length);

const taskObject = fc
  .tuple(taskSpec, fc.constantFrom(1, 20, 20, 63, 64))
  .map(([s, nameLength]) => task(s, nameOfLength("t", nameLength)));

const PERIODIC_TASK_FIELDS: Record<string, Field> = {
  // A schedule that can never fire, or is not cron at all, is the controller's to report: valid here.
  schedule: field(
    fc.constantFrom(
      "1 * * * *",
      "@every 5m",
      "H H * * *",
      "0 6 1 * *",
      "0 0 30 2 *",
      "61 * * * *",
      "not a cron",
      "@reboot",
    ),
    fc.oneof(lengths(128, fc.constant("")), WRONG_TYPES),
    1,
  ),
  // So is a zone name that looks like one but does not exist.
  timeZone: field(
    fc.constantFrom(
      "UTC",
      "Asia/Shanghai",
      "America/Argentina/Buenos_Aires",
      "Etc/GMT+5",
      "Mars/Olympus_Mons",
      "Europe/",
    ),
    fc.oneof(lengths(64, fc.constantFrom("+05:00", "a b", "", "Asia/Shanghai\n")), WRONG_TYPES),
  ),
  taskTemplate: field(
    fc
      .tuple(taskSpec, fc.option(templateMetadata.valid, { nil: undefined, freq: 3 }))
      .map(([s, metadata]) => (metadata === undefined ? { spec: s } : { metadata, spec: s })),
    fc.oneof(
      templateMetadata.edge.map((metadata) => ({ metadata, spec: { task: "app.tasks.add" } })),
      // A run spec may not have a fixed time: every run would share it.
      fc.constantFrom<unknown>(
        { spec: { task: "app.tasks.add", eta: "2026-12-01T06:00:00Z" } },
        { spec: { task: "app.tasks.add", expires: "2026-12-01T06:00:00Z" } },
        { spec: { task: "app.tasks.add", expires: 60, countdown: 5 } },
        {},
        "template",
      ),
    ),
    1,
  ),
  concurrencyPolicy: field(
    fc.constantFrom("Allow", "Forbid", "Replace"),
    fc.constantFrom<unknown>("allow", "", 1),
  ),
  startingDeadlineSeconds: intField(0, INT32_MAX, 3),
  catchUp: field(fc.constantFrom("Latest", "All"), fc.constantFrom<unknown>("latest", "None", 1)),
  suspend: field(fc.boolean(), fc.constantFrom<unknown>("true", 0)),
  startTime: field(RFC3339, NOT_RFC3339, 3),
  endTime: field(RFC3339, NOT_RFC3339, 3),
  maxRuns: intField(1, INT32_MAX, 3),
  jitterSeconds: intField(0, 3600, 3),
  successfulRunsHistoryLimit: intField(0, 100, 3),
  failedRunsHistoryLimit: intField(0, 100, 3),
};

/**
 * Start and end times whose order depends on reading them as instants, not as text: offsets, case,
 * nanoseconds (digits past the ninth dropped), and the ends of CEL's timestamp range.
 */
const WINDOWS: readonly { startTime: string; endTime: string }[] = [
  { startTime: "2026-12-01T06:00:00+08:00", endTime: "2026-11-30T22:00:00Z" },
  { startTime: "2026-12-01T06:00:00+08:00", endTime: "2026-11-30T22:00:01Z" },
  { startTime: "2026-12-01T00:00:00Z", endTime: "2026-11-30T23:00:00-02:00" },
  { startTime: "2026-12-01T00:00:00Z", endTime: "2026-12-01T00:00:00.000000001Z" },
  { startTime: "2026-12-01T00:00:00Z", endTime: "2026-12-01T00:00:00.0000000001Z" },
  { startTime: "2026-12-01t00:00:00z", endTime: "2026-12-02T00:00:00Z" },
  { startTime: "2026-12-01t00:00:00z", endTime: "2026-12-01t00:00:00.000000001z" },
  { startTime: "2026-12-01t08:00:00+08:00", endTime: "2026-12-01t00:00:00z" },
  { startTime: "0001-01-01T00:00:00Z", endTime: "9999-12-31t23:59:59.999999999z" },
  { startTime: "0001-01-01T00:59:59+01:00", endTime: "2026-12-01T00:00:00Z" },
  { startTime: "0000-06-01T00:00:00Z", endTime: "2026-12-01T00:00:00Z" },
  { startTime: "2026-12-01T00:00:00Z", endTime: "9999-12-31T23:00:00-01:00" },
];

const periodicTaskObject = fc
  .tuple(
    spec(PERIODIC_TASK_FIELDS),
    fc.option(fc.constantFrom(...WINDOWS), { nil: undefined, freq: 8 }),
    fc.constantFrom(1, 20, 20, 52, 53),
  )
  .map(([s, window, nameLength]) =>
    periodicTask(window === undefined ? s : { ...s, ...window }, nameOfLength("p", nameLength)),
  );

/**
 * Objects every run sends, whatever the seed: each time written as a list, and each start and end
 * time pair, on an otherwise valid object. Both were disagreements this test found; random objects
 * reach them only now and then, since most carry another error that both gatekeepers refuse.
 */
const PINNED_OBJECTS: readonly Manifest[] = (() => {
  const validTask = { task: "app.tasks.add" };
  const validPeriodicTask = { schedule: "1 * * * *", taskTemplate: { spec: validTask } };
  return [
    ...TIME_LISTS.flatMap((time) => [
      task({ ...validTask, eta: time }, "pinned"),
      periodicTask({ ...validPeriodicTask, startTime: time }, "pinned"),
      periodicTask({ ...validPeriodicTask, endTime: time }, "pinned"),
    ]),
    ...WINDOWS.map((window) => periodicTask({ ...validPeriodicTask, ...window }, "pinned")),
  ];
})();

/** Sometimes a field is null: the API server drops it (a documented exception), zod refuses it. */
const withNulls = (objects: fc.Arbitrary<Manifest>) =>
  fc.tuple(objects, fc.nat({ max: 15 }), fc.nat()).map(([m, roll, pick]) => {
    if (roll !== 0 || m.spec === undefined) return m;
    const keys = Object.keys(m.spec);
    const key = keys[pick % Math.max(1, keys.length)];
    return key === undefined ? m : { ...m, spec: { ...m.spec, [key]: null } };
  });

// ---------------------------------------------------------------------------------------------
// The two verdicts

interface ServerVerdict {
  readonly accepted: boolean;
  readonly status: number;
  /** The object as the server would store it (defaults applied, unknown fields and nulls dropped). */
  readonly stored: unknown;
  readonly message: string;
}

/** The manifest without the null fields withNulls put in its spec, as the API server drops them. */
function withoutNullFields(m: Manifest): Manifest {
  if (m.spec === undefined) return m;
  return { ...m, spec: Object.fromEntries(Object.entries(m.spec).filter(([, v]) => v !== null)) };
}

function plural(m: Manifest): "tasks" | "periodictasks" {
  return m.kind === "Task" ? "tasks" : "periodictasks";
}

const zodVerdict = (m: unknown, kind: string): Parsed<unknown> =>
  kind === "Task" ? parseTask(m) : parsePeriodicTask(m);

describe("zod and the API server judge every generated object alike", () => {
  const kc = kubeConfig();
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;

  beforeAll(async () => {
    await installCrds(kc);
    ns = await createTestNamespace(kc, "fuzz-crd");
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  async function serverVerdict(m: Manifest): Promise<ServerVerdict> {
    try {
      const stored: unknown = await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns.name,
        plural: plural(m),
        body: { ...m, metadata: { ...m.metadata, namespace: ns.name } },
        dryRun: "All",
      });
      return { accepted: true, status: 201, stored, message: "" };
    } catch (err) {
      if (!(err instanceof k8s.ApiException)) throw err;
      const code = Number(err.code);
      // 5xx or a refused connection is the test's problem, not a verdict on the object.
      if (!(code >= 400 && code < 500)) throw err;
      let message = String(err.body);
      try {
        message = String((JSON.parse(String(err.body)) as { message?: unknown }).message ?? message);
      } catch {
        // Not JSON: keep the body.
      }
      return { accepted: false, status: code, stored: null, message };
    }
  }

  it("accepts exactly what zod accepts, and stores the spec zod makes of it", async () => {
    // JSON and back: what the server receives is what zod judges (no undefined, no -0).
    const objects = [
      ...PINNED_OBJECTS,
      ...sampleCases(fc.oneof(withNulls(taskObject), withNulls(periodicTaskObject)), 300),
    ].map((m) => JSON.parse(JSON.stringify(m)) as Manifest);
    const disagreements: string[] = [];
    const tally = { bothAccept: 0, bothRefuse: 0, nullsDropped: 0 };
    const BATCH = 16;
    for (let i = 0; i < objects.length; i += BATCH) {
      const batch = objects.slice(i, i + BATCH);
      const verdicts = await Promise.all(batch.map((m) => serverVerdict(m)));
      batch.forEach((m, j) => {
        const server = verdicts[j];
        if (server === undefined) return;
        const zod = zodVerdict(m, m.kind);
        const show = () =>
          `${m.kind} ${JSON.stringify(m.spec)} (name ${m.metadata.name.length} characters)\n    zod: ${zod.ok ? "accepts" : zod.error}\n    API server: ${server.accepted ? "accepts" : `HTTP ${server.status}: ${server.message}`}`;
        const disagree = (what: string) => disagreements.push(`${what}:\n  ${show()}`);
        if (server.accepted) {
          // Whatever the server stores, the controller must be able to read.
          const read = zodVerdict(server.stored, m.kind);
          if (!read.ok) {
            disagree(`the API server stores what zod cannot read back (${read.error})`);
          } else if (zod.ok) {
            tally.bothAccept++;
            const storedSpec = (server.stored as { spec?: unknown }).spec;
            const zodSpec = (zod.value as { spec?: unknown }).spec;
            if (JSON.stringify(sortKeys(storedSpec)) !== JSON.stringify(sortKeys(zodSpec))) {
              disagreements.push(
                `defaults or pruning differ:\n  ${show()}\n    stored: ${JSON.stringify(storedSpec)}\n    zod:    ${JSON.stringify(zodSpec)}`,
              );
            }
          } else if (zodVerdict(withoutNullFields(m), m.kind).ok) {
            tally.nullsDropped++;
          } else {
            disagree("the API server accepts what zod refuses");
          }
        } else if (zod.ok) {
          disagree("zod accepts what the API server refuses");
        } else {
          tally.bothRefuse++;
        }
      });
    }
    reportCases("crd schema zod vs API server", objects.length, {
      "both accept": tally.bothAccept,
      "both refuse": tally.bothRefuse,
      "nulls dropped by the server": tally.nullsDropped,
      disagreements: disagreements.length,
    });
    expect(
      disagreements.length,
      `zod and the API server disagree:\n\n${disagreements.slice(0, 15).join("\n\n")}`,
    ).toBe(0);
    // A generator that only makes one kind of object would prove nothing.
    expect(tally.bothAccept).toBeGreaterThan(objects.length / 20);
    expect(tally.bothRefuse).toBeGreaterThan(objects.length / 20);
  }, 300_000);
});

/** For comparing objects whatever the order of their keys. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}
