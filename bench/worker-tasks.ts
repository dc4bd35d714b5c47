/**
 * The task module of the worker benchmark (bench/worker.ts). The bodies are shared by every Node
 * worker measured (cadent here, celery-node and BullMQ in their peer scripts), so each runs the
 * same code and the benchmark compares the workers around it.
 */
import { setTimeout as delay } from "node:timers/promises";
import { defineTask } from "../src/worker/index.ts";

/** The benchmark's task bodies by Celery task name; tests/python/interop_app.py has the same tasks. */
export const BENCH_TASK_BODIES = {
  "app.tasks.noop": (): null => null,
  "app.tasks.sleep1ms": async (): Promise<null> => {
    await delay(1);
    return null;
  },
} as const;

export const noop = defineTask("app.tasks.noop", BENCH_TASK_BODIES["app.tasks.noop"]);
export const sleep1ms = defineTask("app.tasks.sleep1ms", BENCH_TASK_BODIES["app.tasks.sleep1ms"]);
