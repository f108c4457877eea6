"""What the user asked for: the options of one run, as the planners and the engine read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class RunOptions:
    suite: str = "quick"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    device: str = "cpu"
    dtypes: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    out: Path = Path("runs/latest")
    resume: bool = False
    retry_skipped: bool = False  # with resume: run again what the circuit breaker skipped
    max_timeouts: int = 3  # consecutive timeouts of one implementation in a unit
    threads: int | None = None
    jobs: int = 2  # framework workers running at once
    executor: str = "local"  # local (threads + worker processes here) or ray (docs/cluster.md)
    ray_address: str | None = None  # with ray: the cluster to join (None: a local one)
    reference_jobs: int | None = None  # reference processes (None: one per CPU; 0: inline)
    keep_outputs_up_to: int = 65536  # keep raw outputs of at most this many elements (0: none)
