"""harness.engine.local.WorkerSession: how a session answers when its worker will not start."""

from __future__ import annotations

from typing import Any

import pytest

from harness.engine import local
from harness.engine.workers import Worker
from harness.messages import Hello, Reply, Stop


class FakeWorker:
    """Stands for a worker process: ``starts`` says, per start, whether it comes up."""

    START_FAILED = Worker.START_FAILED
    starts: list[Hello] = []
    started = 0

    def __init__(self, framework: str, device: str, env: dict[str, str]) -> None:
        self.hello = FakeWorker.starts[min(FakeWorker.started, len(FakeWorker.starts) - 1)]
        FakeWorker.started += 1
        self.alive = self.hello.available

    def request(self, message: Any, timeout: float) -> Reply:
        return Reply("ok")

    def kill(self) -> None:
        self.alive = False

    def close(self) -> None:
        self.alive = False


FAILED = Hello.failed(f"{Worker.START_FAILED}: no answer within 300 s")
UP = Hello(True, "")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeWorker]:
    monkeypatch.setattr(local, "Worker", FakeWorker)
    FakeWorker.started = 0
    return FakeWorker


def test_a_worker_that_fails_to_start_once_is_a_crash_and_the_next_task_retries(
        fake: type[FakeWorker]) -> None:
    fake.starts = [FAILED, UP]
    session = local.WorkerSession("numpy", "cpu", {})
    first = session.request(Stop(), 1.0)
    assert first.status == "crash" and first.message.startswith(Worker.START_FAILED)
    assert session.request(Stop(), 1.0).status == "ok"  # a fresh worker came up
    assert fake.started == 2 and not session.unavailable


def test_repeated_start_failures_make_the_framework_unavailable(fake: type[FakeWorker]) -> None:
    fake.starts = [FAILED]
    session = local.WorkerSession("numpy", "cpu", {})
    statuses = [session.request(Stop(), 1.0).status for _ in range(5)]
    assert statuses == ["crash"] * (local.MAX_START_FAILURES - 1) + \
        ["unavailable"] * (5 - local.MAX_START_FAILURES + 1)
    assert fake.started == local.MAX_START_FAILURES  # no worker started after that


def test_a_framework_that_says_it_is_unavailable_is_not_retried(fake: type[FakeWorker]) -> None:
    fake.starts = [Hello(False, "torch not installed: pip install 'softmax-bench[torch]'")]
    session = local.WorkerSession("torch", "cpu", {})
    assert [session.request(Stop(), 1.0).status for _ in range(3)] == ["unavailable"] * 3
    assert fake.started == 1
