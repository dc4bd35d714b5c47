/**
 * The peer worker of bench/worker.ts: celery-node (npm), the other Node implementation of a Celery
 * worker, draining the benchmark's tasks from one queue with results on the same Redis.
 *
 *   node bench/celery-node-worker.ts <redis url> <queue>
 *
 * celery-node pops with a destructive BRPOP and never acknowledges (peer-baselines.md): it is
 * measured for speed only; it does not give the guarantees cadent's worker does. It has no
 * concurrency setting either: it starts each task as soon as it is popped, without waiting for
 * the ones running, so its concurrency is unbounded.
 */
import celery from "celery-node";
import { BENCH_TASK_BODIES } from "./worker-tasks.ts";

const [url = "redis://127.0.0.1:6379/0", queue = "bench"] = process.argv.slice(2);
const worker = celery.createWorker(url, url, queue);
for (const [name, body] of Object.entries(BENCH_TASK_BODIES)) worker.register(name, body);
void worker.start();
process.on("SIGTERM", () => process.exit(0));
