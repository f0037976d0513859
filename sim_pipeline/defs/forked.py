"""A part of a run's graph in a forked worker process, as its own Dagster run (wiring only).

`sim-pipeline run` stages its tables in two processes on a machine with two cores or more
(`defs.orchestrate`). Before it opens the Dagster instance or any database, the command forks a
worker that observes the sources at once (the observation run, which needs no Great
Expectations), imports Great Expectations while it does, then forks the staging worker (so
neither staging process imports it again), which waits there until the sources have been
observed; then the worker and the command each run their share of the staged tables as a run
of their own. A fork costs milliseconds where a
new interpreter costs the imports (about 2 s, 4 s with Great Expectations), and nothing the
parent had open is used by the worker: it opens its own instance and warehouse connections,
and leaves through ``os._exit`` as multiprocessing's fork workers do.

The worker's finished steps advance the command's progress through a pipe
(`sim_pipeline.progress.current` is a relay in the worker), and its result comes back the same
way: the run's id and whether it succeeded, or, should the worker itself fail outside the run,
the error's type and its first line masked (`quality.redact.masked`: never a value).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sim_pipeline import progress as progress_module
from sim_pipeline.progress import Progress


def can_fork() -> bool:
    """Fork is safe here: Linux (macOS frameworks may not survive a fork) and this process
    runs no other thread (a thread holding a lock at the fork would leave it held for good)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


@dataclass
class WorkerResult:
    run_id: str | None
    success: bool
    error: str | None = None


class _Relay:
    """The worker's `progress.current()`: each advance goes to the command through the pipe."""

    def __init__(self, send: Connection) -> None:
        self._send = send

    def advance(self, n: int = 1, stage: str | None = None, rows: int | None = None) -> None:
        self._send.send(("advance", n, stage, rows))


def _worker(
    run: Callable[[], tuple[str, bool]],
    warm: Callable[[], None] | None,
    go: mp.synchronize.Event,  # ty: ignore[unresolved-attribute]
    send: Connection,
    parent: int,
) -> None:
    progress_module._CURRENT = _Relay(send)  # type: ignore[assignment]
    try:
        if warm is not None:
            warm()
        while not go.wait(timeout=1.0):
            if os.getppid() != parent:  # the command is gone: nothing to run for
                return
        run_id, success = run()
        result = WorkerResult(run_id, success)
    except BaseException as exc:  # reported, masked, to the command; never a traceback
        from sim_pipeline.quality.redact import masked

        first = (str(exc).strip().splitlines() or ["no message"])[0]
        result = WorkerResult(None, False, f"{type(exc).__name__}: {masked(first)}")
    try:
        send.send(("done", result))
    except OSError:  # the command is gone: no one to tell (and no traceback to print)
        pass
    finally:
        send.close()


class ForkedRun:
    """A worker forked now, which calls ``run`` (returning its Dagster run's id and success)
    once `start` is called (``at_once``: without waiting); ``warm`` runs first, while it waits.

    Forking starts no thread here, so another worker can be forked after this one: an
    ``at_once`` worker's messages wait in the pipe until `wait` reads them."""

    def __init__(
        self,
        run: Callable[[], tuple[str, bool]],
        warm: Callable[[], None] | None = None,
        *,
        at_once: bool = False,
    ) -> None:
        ctx = mp.get_context("fork")
        self._go = ctx.Event()
        if at_once:
            self._go.set()
        self._recv, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_worker, args=(run, warm, self._go, send, os.getpid()), daemon=True
        )
        self._process.start()
        send.close()
        self._listener: threading.Thread | None = None
        self.result: WorkerResult | None = None
        self.started = self.finished = 0.0

    def start(self, progress: Progress | None) -> None:
        """Let the worker run; its steps advance ``progress``."""
        self.started = time.perf_counter()
        self._listener = threading.Thread(target=self._listen, args=(progress,), daemon=True)
        self._listener.start()
        self._go.set()

    def _listen(self, progress: Progress | None) -> None:
        while True:
            try:
                message = self._recv.recv()
            except (EOFError, OSError):
                break
            if message[0] == "advance" and progress is not None:
                progress.advance(message[1], stage=message[2], rows=message[3])
            elif message[0] == "done":
                self.result = message[1]
        self.finished = time.perf_counter()

    def wait(self) -> WorkerResult:
        """The worker's result, once it has ended (a worker that died without one: its exit
        code)."""
        if self._listener is None:  # never started (an ``at_once`` worker): read it here
            self._listen(None)
        self._process.join()
        if self._listener is not None:
            self._listener.join()
        if self.result is None:
            code = self._process.exitcode
            self.result = WorkerResult(None, False, f"the worker process ended with code {code}")
        return self.result

    def cancel(self) -> bool:
        """Stop the worker if it still runs (the command was interrupted or failed): SIGTERM,
        then SIGKILL after 5 s (Dagster defers SIGTERM inside a step). True when it had to be
        stopped."""
        stopped = False
        if self._process.is_alive():
            stopped = True
            self._process.terminate()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        self._recv.close()
        return stopped
