"""Sends tasks with Celery's own client and waits for their results, for cadent's worker tests.

    python worker_client.py '<json>'

The JSON: {"tasks": [{"name", "args", "kwargs", "queue", "countdown", "eta", "expires",
"priority", "time_limit", "soft_time_limit", "task_id"}], "timeout": 60, "wait": true}.
`eta` is an ISO-8601 string, `expires` seconds or an ISO-8601 string.
Prints a JSON list, one entry per task: {"id", "state", "result"} when get() returned, or
{"id", "state", "exc_type", "exc_module", "exc_args"} with the exception get() raised.
The broker and backend are CELERY_BROKER_URL (see interop_app.py).
"""
import datetime
import json
import sys

from interop_app import app

OPTIONS = ("queue", "countdown", "priority", "time_limit", "soft_time_limit", "task_id")


def send(task):
    options = {name: task[name] for name in OPTIONS if name in task}
    if "eta" in task:
        options["eta"] = datetime.datetime.fromisoformat(task["eta"])
    if "expires" in task:
        expires = task["expires"]
        options["expires"] = datetime.datetime.fromisoformat(expires) if isinstance(expires, str) else expires
    return app.send_task(task["name"], args=task.get("args", []), kwargs=task.get("kwargs", {}), **options)


def jsonable(value):
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)


def main():
    spec = json.loads(sys.argv[1])
    results = [send(task) for task in spec["tasks"]]
    if not spec.get("wait", True):
        print(json.dumps([{"id": r.id} for r in results]))
        return
    out = []
    for r in results:
        try:
            value = r.get(timeout=spec.get("timeout", 60))
            out.append({"id": r.id, "state": r.state, "result": value})
        except Exception as exc:  # the task's exception as Celery rebuilds it, or a timeout
            out.append(
                {
                    "id": r.id,
                    "state": r.state,
                    "exc_type": type(exc).__name__,
                    "exc_module": type(exc).__module__,
                    "exc_args": [jsonable(a) for a in exc.args],
                }
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
