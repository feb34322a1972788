"""Which process runs a trial, and whether that process is gone (issue 21).

Optuna's heartbeat finds a dead worker on any host, but only once its heartbeat is stale (the
grace period): after `kill -9` and an immediate resume, the killed trials stayed RUNNING until the
resumed search had finished. A trial records the host and process that runs it; on the same host a
process that no longer exists (or is a zombie, or whose pid a new process has taken) is known dead
at once. Trials of other hosts keep the heartbeat rule: their processes cannot be seen from here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

WORKER_ATTR = "worker"  # trial user attribute: {"host": ..., "pid": ..., "started": ...}


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None where unknown:
    with the pid it names one process, also after the pid is reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if len(fields) > 19 else None  # field 22 of stat; [0] here is field 3


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def this_worker() -> dict:
    """What a trial records of the process that runs it."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def is_gone(worker: dict | None) -> bool:
    """Whether the recorded process is known to be dead: only for a process of this host."""
    if not worker or worker.get("host") != socket.gethostname() or not isinstance(worker.get("pid"), int):
        return False
    if worker["pid"] <= 0:  # os.kill would signal a process group
        return False
    pid = worker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    if _is_zombie(pid):  # killed, not yet reaped by its parent
        return True
    started, recorded = _process_start(pid), worker.get("started")
    return started is not None and recorded is not None and started != recorded  # the pid now names another process
