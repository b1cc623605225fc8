"""Toy task functions for the executor tests (importable, so spawn and Ray can unpickle them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def square(task: dict[str, Any]) -> dict[str, Any]:
    """{"x": n} -> {"status": "ok", "y": n * n, "pid": worker pid, "threads": OMP_NUM_THREADS};
    task["sleep"] seconds first, if given."""
    time.sleep(task.get("sleep", 0.0))
    if task.get("raise"):
        raise ValueError(f"bad x {task['x']}")
    return {"status": "ok", "y": task["x"] ** 2, "pid": os.getpid(), "threads": os.environ.get("OMP_NUM_THREADS")}


def env_var(task: dict[str, Any]) -> dict[str, Any]:
    """{"name": VAR} -> {"status": "ok", "value": the worker's os.environ.get(VAR)}."""
    return {"status": "ok", "value": os.environ.get(task["name"])}


def kill_worker(task: dict[str, Any]) -> dict[str, Any]:
    """SIGKILL this worker: always (task["always"]) or only the first time (marker file absent).

    Each attempt appends a line to task["count"], if given.
    """
    if "count" in task:
        with open(task["count"], "a") as f:
            f.write("attempt\n")
    if task.get("always") or "marker" in task and not Path(task["marker"]).exists():
        if "marker" in task:
            Path(task["marker"]).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return square(task)
