"""The report's pages: each module turns ``ReportData`` into the context of one template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page"]


@dataclass(frozen=True)
class Page:
    """One HTML file: where it goes (relative to the site root), its template and context."""

    path: str
    template: str
    title: str
    nav: str  # the navigation entry it belongs to
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        """The relative path from this page back to the site root ("" or "../")."""
        return "../" * self.path.count("/")
