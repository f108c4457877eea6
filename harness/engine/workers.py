"""Parent-side handles on worker processes: start, send a task, wait with a timeout, restart.

A worker that exits (os.abort, a segfault, a CUDA error) or does not answer in time is killed
with its whole process group; the caller records a ``crash`` or ``timeout`` and asks for a
fresh worker. Nothing here imports a framework.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import weakref
from collections import deque

from harness.messages import Catalog, Hello, Reply, Request, Stop, encode

_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()  # every started worker, for kill_all
_LIVE_LOCK = threading.Lock()


def kill_all() -> None:
    """Kill every worker this process started that is still running (an interrupted run):
    workers run in their own session, so a Ctrl-C in the terminal never reaches them."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for worker in live:
        worker.kill()


class Worker:
    """One ``python -m harness.worker FRAMEWORK DEVICE`` process."""

    START_FAILED = "worker failed to start"  # the reason of a hello the worker never sent

    def __init__(self, framework: str, device: str, start_timeout: float = 300.0,
                 env: dict[str, str] | None = None):
        self.framework, self.device = framework, device
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.worker", framework, device],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True, env={**os.environ, **(env or {})})
        with _LIVE_LOCK:
            _LIVE.add(self)
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        first = self._next(start_timeout)
        try:
            if first.status != "ok":
                raise ValueError(first.message)
            self.hello = Hello.from_json(first.data)
        except (ValueError, TypeError) as exc:
            self.hello = Hello.failed(f"{self.START_FAILED}: {exc}")
            self.kill()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip())

    def _exit_description(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            what = f"killed by signal {signal.Signals(-code).name}"
        else:
            what = f"exited with code {code}"
        tail = next((ln for ln in reversed(self._stderr_tail)
                     if not ln.startswith(("  ", "Traceback"))), "")
        return f"worker {what}" + (f"; last stderr: {tail[:300]}" if tail else "")

    def _next(self, timeout: float) -> Reply:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return Reply("timeout", f"no answer within {timeout:g} s; worker killed")
        if line is None:
            return Reply("crash", self._exit_description())
        try:
            return Reply("ok", data=json.loads(line))
        except json.JSONDecodeError:
            return Reply("crash", f"garbled worker output: {line[:200]!r}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, task: Request, timeout: float) -> Reply:
        if not self.alive:
            return Reply("crash", self._exit_description())
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(encode(task) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return Reply("crash", self._exit_description())
        reply = self._next(timeout)
        if reply.status != "ok":
            return reply
        return Reply.from_json(reply.data)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        if self.alive and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(encode(Stop()) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def list_implementations(timeout: float = 120.0) -> Catalog:
    """Every implementation's metadata and the plugin errors, from a separate process."""
    proc = subprocess.run([sys.executable, "-m", "harness.worker", "--list"],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return Catalog((), (f"listing failed: {tail[0]}",))
    return Catalog.from_json(json.loads(proc.stdout.strip().splitlines()[-1]))
