"""Tables as data: columns, rows of cells, and the best value of each column marked.

Pages build ``Table`` objects; one Jinja macro renders every table as a real HTML table (with
``data-v`` sort keys for the small sorting script), so the markup and its escaping live in one
place. Cell text is plain text: the template escapes it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

__all__ = ["Cell", "Column", "Table", "mark_best", "record_anchor", "row_anchor"]


def _digest(parts: Sequence[object]) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:12]


def record_anchor(implementation: object, case: object, dtype: object, device: object,
                  pass_: object, machine: object) -> str:
    """The permalink id of a record's row (implementation × case × dtype × device, with the
    pass and the machine): the same wherever the record is listed and in every rebuild."""
    return "r-" + _digest((implementation, case, dtype, device, pass_, machine))


def row_anchor(table_id: str, texts: Sequence[str]) -> str:
    """The permalink id of an aggregate row: its table and the text of its key cells."""
    return "r-" + _digest((table_id, *texts))


@dataclass(frozen=True)
class Cell:
    """One cell: its text, the key it sorts by (numbers sort as numbers), and decorations."""

    text: str
    value: float | str | None = None
    href: str | None = None
    cls: str = ""
    title: str | None = None
    code: bool = False
    note: str = ""  # a second, smaller line under the text

    @property
    def sort_key(self) -> str | None:
        """The ``data-v`` attribute: a number in a form JavaScript parses, or text."""
        if self.value is None:
            return None
        if isinstance(self.value, float):
            if math.isnan(self.value):
                return None
            # nine significant digits order every pair of float32 values and nearly every
            # pair of float64 ones, at half the bytes of repr() (a full run has ~10^5 cells)
            return f"{self.value:.9g}" if math.isfinite(self.value) else (
                "Infinity" if self.value > 0 else "-Infinity")
        if isinstance(self.value, int):
            return str(self.value)
        return self.value

    @property
    def data_v(self) -> str | None:
        """``sort_key`` where the sorting script needs it: not for a text equal to the cell's
        own text (the script falls back to the text)."""
        key = self.sort_key
        return None if isinstance(self.value, str) and key == self.text else key


@dataclass(frozen=True)
class Column:
    """A column: its header, whether it sorts as numbers, and which end is best (if any)."""

    label: str
    numeric: bool = False
    best: str | None = None  # "min" or "max": those cells get the class "best"
    title: str = ""
    all_rows: bool = False  # judge the best over every row, not only the contenders


@dataclass
class Table:
    """A sortable, filterable table; ``id`` must be unique on its page."""

    id: str
    columns: Sequence[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""
    filter: bool = True
    # one permalink id per row (record_anchor); None: made from the text cells (row_anchor)
    ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def anchors(self) -> list[str]:
        """A stable, unique id per row: ``ids`` where given, else a hash of the table id and
        the row's text cells (numbers change between runs, names do not); repeats get a
        suffix."""
        if self.ids is not None and len(self.ids) == len(self.rows):
            given = self.ids
        else:
            given = [row_anchor(self.id, [c.text for c in row
                                          if not isinstance(c.value, (int, float))])
                     for row in self.rows]
        seen: dict[str, int] = {}
        out = []
        for anchor in given:
            n = seen.get(anchor, 0)
            seen[anchor] = n + 1
            out.append(anchor if n == 0 else f"{anchor}-{n + 1}")
        return out


def _number(cell: Cell) -> float | None:
    if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
        v = float(cell.value)
        return None if math.isnan(v) else v
    return None


def mark_best(table: Table, contenders: Sequence[bool] | None = None) -> Table:
    """Add the class ``best`` to the best cells of every column that declares ``best``, when
    the column holds at least two different numbers (a column of equal values has no best).

    ``contenders`` (one flag per row) limits the columns without ``all_rows`` to some rows: an
    implementation that fails a case has no ULP error there, so its max ulp can look best.
    """
    flags = list(contenders) if contenders is not None else [True] * len(table.rows)
    for j, column in enumerate(table.columns):
        if column.best not in ("min", "max"):
            continue
        rows = [i for i in range(len(table.rows)) if column.all_rows or flags[i]]
        values = [v for i in rows if (v := _number(table.rows[i][j])) is not None]
        if len(set(values)) < 2 and not (values and len(rows) < len(table.rows)):
            continue
        target = min(values) if column.best == "min" else max(values)
        for i in rows:
            if _number(table.rows[i][j]) == target:
                cell = table.rows[i][j]
                table.rows[i][j] = replace(cell, cls=(cell.cls + " best").strip())
    return table
