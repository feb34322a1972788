"""When a search worker may be stopped by Ctrl-C (SIGINT) or a scheduler's SIGTERM.

A KeyboardInterrupt raised while the objective trains is safe: Optuna catches it and marks the
trial failed. Raised inside Optuna's own bookkeeping (``study.ask`` creating the next trial and
running the sampler, ``study.tell`` writing a result, a trial's attributes being written), it
escapes with the trial left "running" in the storage, to be failed only once its heartbeat is
stale. So a worker defers a stop signal while Optuna keeps its books and raises it as soon as the
worker is back in code that may be cut short.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class StopSignal:
    """One per worker process: the signal handler and where the worker stands."""

    def __init__(self) -> None:
        self.requested = False  # a stop signal has arrived
        self.immediate = True  # raise it at once (outside Optuna's bookkeeping)

    def handle(self, signum, frame) -> None:
        """SIGINT or SIGTERM: later signals are ignored (Ctrl-C reaches the whole process group and
        the main process passes a lone signal on), so a second one cannot land inside the cleanup."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.requested = True
        if self.immediate:
            raise KeyboardInterrupt

    def install(self) -> None:
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Optuna's bookkeeping: a signal waits until the block ends (where it is raised if the
        code around may be cut short)."""
        before, self.immediate = self.immediate, False
        try:
            yield
        finally:
            self.immediate = before
        if before and self.requested:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def allowed(self) -> Iterator[None]:
        """Code that may be cut short (training): a signal that waited is raised on entry."""
        before, self.immediate = self.immediate, True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        finally:
            self.immediate = before


STOP = StopSignal()  # the worker process's (spawned processes each get their own)
