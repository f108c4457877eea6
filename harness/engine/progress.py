"""The run's progress bar (rich): done/total, the current implementation and case, elapsed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[int, int, str], None]]:
    """Yields ``update(done, total, what)``; a no-op when disabled."""
    if not enabled:
        yield lambda done, total, what: None
        return
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}", style="dim"))
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what[:70])

        yield update
