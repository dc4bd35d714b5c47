"""The Celery app cadent's interoperability tests run in real Python Celery workers.

The broker and result backend come from CELERY_BROKER_URL (the test's private Redis).
"""
import os

from celery import Celery

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("interop_app", broker=broker, backend=broker)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_track_started=True,
    broker_transport_options={
        "visibility_timeout": int(os.environ.get("CADENT_VISIBILITY_TIMEOUT", "3600")),
    },
    worker_prefetch_multiplier=int(os.environ.get("CADENT_PREFETCH", "4")),
)


@app.task(name="app.tasks.add")
def add(x, y):
    return x + y


@app.task(name="app.tasks.del_redis_data")
def del_redis_data(*args, **kwargs):
    return {"deleted": len(args), "kwargs": kwargs}


@app.task(name="app.tasks.fail")
def fail(message="boom"):
    raise ValueError(message)


@app.task(name="app.tasks.whoami", bind=True)
def whoami(self, *args, **kwargs):
    """Echoes what the worker understood of the message, so tests can check the wire format."""
    request = self.request
    return {
        "id": request.id,
        "args": list(args),
        "kwargs": kwargs,
        "retries": request.retries,
        "eta": str(request.eta),
        "expires": str(request.expires),
        "delivery_info": request.delivery_info,
        "root_id": request.root_id,
        "parent_id": request.parent_id,
        "hostname": request.hostname,
    }


@app.task(name="app.tasks.flaky", bind=True)
def flaky(self, times=1):
    """Retries itself (Celery's self.retry) `times` times, then returns how often it ran."""
    if self.request.retries < times:
        raise self.retry(countdown=1, max_retries=times)
    return {"retries": self.request.retries}


@app.task(name="app.tasks.fail_until", bind=True)
def fail_until(self, attempts):
    """Fails until the message says it is retry number `attempts` (cadent's controller-side retries)."""
    if self.request.retries < attempts:
        raise ValueError(f"attempt {self.request.retries + 1} fails")
    return {"retries": self.request.retries}


@app.task(name="app.tasks.sleep")
def sleep(seconds):
    import time

    time.sleep(seconds)
    return seconds


@app.task(name="app.tasks.noop")
def noop():
    """Does nothing: the worker benchmark measures the worker, not the task."""
    return None


@app.task(name="app.tasks.sleep1ms")
def sleep1ms():
    """Sleeps 1 ms: the worker benchmark's second workload, tasks that wait rather than compute."""
    import time

    time.sleep(0.001)
    return None


@app.task(name="app.tasks.nap", bind=True, acks_late=True)
def nap(self, seconds=0, record=None):
    """Sleeps and returns the worker's name; with `record`, pushes start:/done:<hostname> onto that list.

    cadent's test tasks (tests/fixtures/worker-tasks.ts) define the same task. acks_late, so a killed
    worker's message stays in kombu's unacked hash and is restored.
    """
    import time

    import redis

    client = redis.Redis.from_url(broker) if record else None
    if client is not None:
        client.rpush(record, "start:%s" % self.request.hostname)
    time.sleep(float(seconds))
    if client is not None:
        client.rpush(record, "done:%s" % self.request.hostname)
    return {"hostname": self.request.hostname, "id": self.request.id}


@app.task(name="app.tasks.tally", bind=True, acks_late=True)
def tally(self, seconds=0, record=None):
    """The chaos suite's task: pushes its task id onto `record` (every execution counts), then sleeps.

    cadent's test tasks define the same task; acks_late, so a killed worker's message is restored.
    """
    import time

    import redis

    if record:
        redis.Redis.from_url(broker).rpush(record, self.request.id)
    time.sleep(float(seconds))
    return {"hostname": self.request.hostname, "id": self.request.id}
