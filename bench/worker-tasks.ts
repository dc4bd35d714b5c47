/** The task module of the worker benchmark (bench/worker.ts): one task that does nothing. */
import { defineTask } from "../src/worker/index.ts";

export const noop = defineTask("app.tasks.noop", () => null);
