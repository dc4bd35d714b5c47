/**
 * The peer worker of bench/worker.ts: celery-node (npm), the other Node implementation of a Celery
 * worker, draining `app.tasks.noop` from one queue with results on the same Redis.
 *
 *   node bench/celery-node-worker.ts <redis url> <queue>
 *
 * celery-node pops with a destructive BRPOP and never acknowledges (peer-baselines.md): it is
 * measured for speed only; it does not give the guarantees cadent's worker does.
 */
import celery from "celery-node";

const [url = "redis://127.0.0.1:6379/0", queue = "bench"] = process.argv.slice(2);
const worker = celery.createWorker(url, url, queue);
worker.register("app.tasks.noop", () => null);
void worker.start();
process.on("SIGTERM", () => process.exit(0));
