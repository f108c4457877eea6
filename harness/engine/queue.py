"""The unit queue: units of work grouped by framework, handed to threads with framework affinity."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Generic, TypeVar

U = TypeVar("U")


class UnitQueue(Generic[U]):
    """Units of work grouped by framework, handed to threads with framework affinity.

    ``take(current)`` gives the thread that just finished a unit of ``current`` (None: a new
    thread) the next unit of the same framework while there is one; otherwise a unit of the
    framework with the most work left that no thread runs, or, when every framework left is
    running, of the one with the most work left. So each framework mostly lives in one worker
    process: one import, and compiled pieces shared between its implementations (JAX's
    op-by-op kernels of exp, max, sum, ...) compiled once. Thread-safe.
    """

    def __init__(self) -> None:
        self._units: dict[str, deque[tuple[U, int]]] = {}
        self._work: Counter[str] = Counter()  # weight left per framework
        self._running: Counter[str] = Counter()  # threads on each framework
        self._lock = threading.Lock()

    def add(self, framework: str, unit: U, weight: int) -> None:
        with self._lock:
            self._units.setdefault(framework, deque()).append((unit, weight))
            self._work[framework] += weight

    def take(self, current: str | None) -> tuple[str, U] | None:
        with self._lock:
            if current is not None:
                self._running[current] -= 1
            left = [fw for fw, units in self._units.items() if units]
            if not left:
                return None
            if current not in left:
                current = max(left, key=lambda fw: (self._running[fw] == 0, self._work[fw]))
            self._running[current] += 1
            unit, weight = self._units[current].popleft()
            self._work[current] -= weight
            return current, unit
