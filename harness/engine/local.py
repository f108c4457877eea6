"""The local executor: threads on this machine, each driving one worker process at a time.

An executor's one job is to run units: it decides where and how many at once, and gives the
engine, for each unit, a ``Session`` — something that answers ``request(message, timeout)`` with
a ``Reply`` from a worker of the unit's framework. Everything else (what a task is, what its
outcome means, the store) is the engine's. A Ray executor is the same seam with sessions that
live in Ray actors on other machines.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from harness.engine import workers
from harness.engine.queue import UnitQueue
from harness.engine.workers import Worker
from harness.messages import Hello, Reply, Request

# Errors after which a process's device context is unusable (CUDA errors are sticky: every later
# call fails the same way), so the worker is replaced before the next task.
STICKY_ERRORS = ("CUDA error", "cudaError", "CUDA_ERROR", "CUBLAS_STATUS", "CUDNN_STATUS",
                 "device-side assert", "illegal memory access")


MAX_START_FAILURES = 3


def is_sticky(reply: Reply) -> bool:
    return reply.status == "error" and any(m in reply.message for m in STICKY_ERRORS)


class Session(Protocol):
    """A worker of one framework on one device, (re)started on demand."""

    framework: str

    @property
    def hello(self) -> Hello | None:
        """The last worker's hello; None before the first request."""

    def request(self, message: Request, timeout: float) -> Reply: ...

    def close(self) -> None: ...


class UnitLike(Protocol):
    framework: str
    weight: int


RunUnit = Callable[[Session, UnitLike], None]


class WorkerSession:
    """The framework's worker process on this machine; a crash, hang or sticky device error kills
    it, and the next request starts a fresh one."""

    def __init__(self, framework: str, device: str, env: dict[str, str]):
        self.framework, self.device, self.env = framework, device, env
        self.node = socket.gethostname()  # the records' ``node``: where the worker runs
        self.worker: Worker | None = None
        self.unavailable = ""  # set when a worker could not serve: no use starting another
        self.start_failures = 0  # workers in a row that failed to start

    @property
    def hello(self) -> Hello | None:
        return self.worker.hello if self.worker is not None else None

    def request(self, message: Request, timeout: float) -> Reply:
        if self.unavailable:
            return Reply("unavailable", self.unavailable)
        if self.worker is None or not self.worker.alive:
            self.worker = Worker(self.framework, self.device, env=self.env)
            hello = self.worker.hello
            if not hello.available and hello.reason.startswith(Worker.START_FAILED):
                # A worker that died or hung while starting may be a passing accident (a file
                # being replaced, memory pressure): the task is a crash, and the next one tries
                # a fresh worker; after MAX_START_FAILURES in a row the framework is unavailable.
                self.start_failures += 1
                if self.start_failures < MAX_START_FAILURES:
                    return Reply("crash", hello.reason)
            if not hello.available:
                self.unavailable = hello.reason or "unavailable"
                return Reply("unavailable", self.unavailable)
            self.start_failures = 0
        reply = self.worker.request(message, timeout)
        if reply.status in ("crash", "timeout") or is_sticky(reply):
            self.worker.kill()  # the next request starts a fresh worker
        return reply

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


class LocalExecutor:
    """``jobs`` threads take units off one queue with framework affinity (``UnitQueue``); a
    thread keeps its framework's worker between units and replaces it when it moves on."""

    name = "local"

    def __init__(self, device: str, jobs: int = 2, threads: int | None = None):
        if jobs < 1:
            raise ValueError(f"--jobs {jobs}: must be at least 1")
        self.device, self.jobs = device, jobs
        self.env = {"SOFTMAX_BENCH_THREADS": str(threads)} if threads else {}
        self._stop = threading.Event()

    def session(self, framework: str) -> WorkerSession:
        return WorkerSession(framework, self.device, self.env)

    def run(self, units: Sequence[UnitLike], run_unit: RunUnit, *, jobs: int | None = None
            ) -> None:
        """Run every unit (order kept within a framework); returns when all are done. On
        Ctrl-C (or a harness bug) the threads stop after their task and every worker is killed."""
        run_with_affinity(self, units, run_unit, jobs or self.jobs, "executor")

    def stop(self) -> None:
        """Stop taking units and kill every worker (Ctrl-C)."""
        self._stop.set()
        workers.kill_all()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class AffinityExecutor(Protocol):
    """What ``run_with_affinity`` needs of an executor (the local one and the Ray one)."""

    @property
    def stopped(self) -> bool: ...

    def session(self, framework: str) -> Session: ...

    def stop(self) -> None: ...


def run_with_affinity(executor: AffinityExecutor, units: Sequence[UnitLike], run_unit: RunUnit,
                      jobs: int, thread_name: str) -> None:
    """``jobs`` threads take units off one ``UnitQueue`` (framework affinity); a thread keeps
    its framework's session between units and replaces it when it moves on. A harness bug or
    Ctrl-C in any thread stops the executor (``executor.stop``) and is raised here."""
    queue: UnitQueue[UnitLike] = UnitQueue()
    for unit in units:
        queue.add(unit.framework, unit, unit.weight)

    def drain() -> None:
        session: Session | None = None
        try:
            while not executor.stopped and \
                    (taken := queue.take(session.framework if session else None)) is not None:
                framework, unit = taken
                if session is None or session.framework != framework:
                    if session is not None:
                        session.close()
                    session = executor.session(framework)
                run_unit(session, unit)
        finally:
            if session is not None:
                session.close()

    n = max(1, min(jobs, len(units)))
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=thread_name)
    try:
        for future in [pool.submit(drain) for _ in range(n)]:
            future.result()  # re-raises a harness bug (a store error, say) here
    except BaseException:
        executor.stop()
        raise
    finally:
        pool.shutdown(wait=True)
