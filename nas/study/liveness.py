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


def _stat(pid: int) -> list[str] | None:
    """Fields 3 on of /proc/<pid>/stat (state, ppid, ...), after the command name; None where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(fields: list[str] | None) -> int | None:
    """The start time in clock ticks since boot (field 22 of stat): with the pid it names one
    process, also after the pid is reused."""
    return int(fields[19]) if fields and len(fields) > 19 else None


def this_worker() -> dict:
    """What a trial records of the process that runs it."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(_stat(pid))}


def is_gone(worker: dict | None) -> bool:
    """Whether the recorded process is known to be dead: only for a process of this host."""
    pid = worker.get("pid") if worker else None
    # (a pid of 0 or less would make os.kill signal a process group)
    if not worker or worker.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    fields = _stat(pid)
    if fields and fields[0] == "Z":  # killed, not yet reaped by its parent
        return True
    started, recorded = _process_start(fields), worker.get("started")
    return started is not None and recorded is not None and started != recorded  # the pid now names another process
