/**
 * The BullMQ peer of bench/worker.ts: one BullMQ Worker draining the benchmark's jobs (named after
 * the Celery tasks, running the same bodies as cadent) from one queue on the same Redis.
 *
 *   node bench/bullmq-worker.ts <redis url> <queue> <concurrency>
 *
 * BullMQ's defaults otherwise: completed jobs and their return values are kept (as the other
 * workers keep results), each job is locked while it runs and renewed, stalled jobs are checked,
 * and a job is fetched when a concurrency slot frees (the fetch of the next job rides on the
 * completion of the last), so there is no prefetch beyond the concurrency.
 */
import { Worker } from "bullmq";
import type { Job } from "bullmq";
import { BENCH_TASK_BODIES } from "./worker-tasks.ts";

const [url = "redis://127.0.0.1:6379/0", queue = "bench", concurrency = "64"] = process.argv.slice(2);

const bodies: ReadonlyMap<string, () => unknown> = new Map(Object.entries(BENCH_TASK_BODIES));

async function processJob(job: Job): Promise<unknown> {
  const body = bodies.get(job.name);
  if (body === undefined) throw new Error(`no body for job ${job.name}: see bench/worker-tasks.ts`);
  return await body();
}

const worker = new Worker(queue, processJob, {
  connection: { url, maxRetriesPerRequest: null },
  concurrency: Number(concurrency),
});
worker.on("error", (err) => console.error(err));
process.on("SIGTERM", () => {
  void worker.close().finally(() => process.exit(0));
});
