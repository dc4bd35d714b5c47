/** A worker on the in-memory broker under fake timers, and messages to feed it. */
import { Writable } from "node:stream";
import { pino } from "pino";
import { vi } from "vitest";
import { encodeTaskMessage } from "../../../src/celery/index.ts";
import type { TaskMessageInput } from "../../../src/celery/index.ts";
import type { TaskDefinition } from "../../../src/worker/task.ts";
import { Worker } from "../../../src/worker/worker.ts";
import type { WorkerOptions } from "../../../src/worker/worker.ts";
import { FakeBroker } from "./fake-broker.ts";

/** The instant every test starts at. */
export const T0 = new Date("2026-11-25T12:00:00.000Z");

/**
 * Fake timers and Date from T0. setImmediate stays real: the worker batches its writes on it, and
 * a fake immediate created while timers fire is pushed 1 ms later, which would shift every instant
 * a test names.
 */
export function useFakeClock(): void {
  vi.useFakeTimers({
    now: T0,
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
  });
}

const realImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface Sent {
  readonly id: string;
  readonly tag: string;
  readonly key: string;
  readonly text: string;
}

let counter = 0;

/** A message as Celery's send_task writes it, with a readable id (`<label>-<n>`). */
export function celeryMessage(
  task: string,
  input: Partial<Omit<TaskMessageInput, "task" | "now">> & { readonly label?: string } = {},
): Sent {
  counter++;
  const id = input.id ?? `${input.label ?? "task"}-${counter}`;
  const tag = input.deliveryTag ?? `tag-${id}`;
  const encoded = encodeTaskMessage({
    queue: "celery",
    ...input,
    task,
    id,
    deliveryTag: tag,
    now: new Date(),
  });
  return { id, tag, key: encoded.key, text: encoded.text };
}

export interface Harness {
  readonly broker: FakeBroker;
  readonly worker: Worker;
  readonly logs: Record<string, unknown>[];
  send(...messages: Sent[]): void;
  /** Lets every due timer, immediate and promise run, advancing the clock by `ms`. */
  advance(ms?: number): Promise<void>;
  logged(msg: string): Record<string, unknown>[];
}

export async function startWorker(
  tasks: TaskDefinition[],
  options: Partial<Omit<WorkerOptions, "broker" | "tasks">> = {},
  broker: FakeBroker = new FakeBroker(),
): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n"))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const worker = new Worker({
    broker,
    tasks,
    queues: ["celery"],
    hostname: "cadent@test",
    pid: 4242,
    clock: { now: () => Date.now(), monotonic: () => Date.now() },
    logger: pino({ level: "debug" }, destination),
    ...options,
  });
  const advance = async (ms = 0): Promise<void> => {
    await vi.advanceTimersByTimeAsync(ms);
    for (let i = 0; i < 5; i++) {
      await realImmediate();
      await vi.advanceTimersByTimeAsync(0);
    }
  };
  await worker.start();
  await advance();
  return {
    broker,
    worker,
    logs,
    advance,
    send: (...messages) => {
      for (const m of messages) broker.lpush(m.key, m.text);
    },
    logged: (msg) => logs.filter((line) => line["msg"] === msg),
  };
}

/** A promise with its resolve function, for handlers that wait for the test. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open: (value: T) => void = () => undefined;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}
