"""The seed's Celery app: the same task names as examples/ts-worker/tasks.ts, so a Python worker
and a cadent worker can run the examples' schedules interchangeably.

    pip install 'celery[redis]'
    REDIS_URL=redis://127.0.0.1:6379/0 celery -A app worker -Q celery    # from this folder
"""
import os
import time
from datetime import date

import redis
from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("app", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_track_started=True,
    task_acks_late=True,  # like cadent's worker: a killed worker's message is delivered again
)


@app.task(name="app.tasks.del_redis_data", soft_time_limit=25 * 60, time_limit=30 * 60)
def del_redis_data(pattern="cache:*", dry_run=False):
    """The seed's hourly clean-up: deletes (or with dry_run only counts) the keys matching pattern."""
    client = redis.Redis.from_url(REDIS_URL)
    matched = 0
    for batch in _batches(client.scan_iter(match=pattern, count=500), 500):
        matched += len(batch)
        if not dry_run:
            client.unlink(*batch)
    return {"pattern": pattern, "deleted": 0 if dry_run else matched, "matched": matched, "dry_run": dry_run}


@app.task(name="app.tasks.add")
def add(x, y):
    return x + y


def _build_report(task_id, month=None, format="json"):
    month = month or _previous_month()
    time.sleep(0.2)
    return {"month": month, "format": format, "rows": 3, "url": f"reports/{month}.{format}", "taskId": task_id}


@app.task(name="app.tasks.report", bind=True, soft_time_limit=25 * 60, time_limit=30 * 60)
def report(self, month=None, format="json"):
    return _build_report(self.request.id, month, format)


@app.task(name="app.tasks.monthly_report", bind=True, soft_time_limit=25 * 60, time_limit=30 * 60)
def monthly_report(self, month=None, format="json"):
    """The task examples/monthly-report.yaml schedules (06:00 Asia/Shanghai on the 1st)."""
    return _build_report(self.request.id, month, format)


@app.task(name="app.tasks.fail")
def fail(message="boom"):
    raise ValueError(message)


@app.task(name="app.tasks.flaky", bind=True)
def flaky(self, times=1):
    if self.request.retries < times:
        raise self.retry(exc=KeyError(f"attempt {self.request.retries}"), countdown=1, max_retries=times)
    return {"retries": self.request.retries}


def _previous_month():
    today = date.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}"


def _batches(iterable, size):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
