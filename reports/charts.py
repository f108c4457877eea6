"""Interactive charts: plotly figures, serialised for the page's local plotly.js.

Each chart is a ``<div>`` with a fixed id (plotly would otherwise make a random one, and the
site would not rebuild byte for byte) and its figure as JSON in a ``<script
type="application/json">`` block that report.js hands to ``Plotly.newPlot`` (with the plot
config: no logo, responsive). Plotly reads
``<b>``-style tags in text, so every label from the data is HTML-escaped before it goes in
(plotly shows the entities as the characters); its JSON encoder escapes ``<``, ``>`` and ``/``,
so nothing in a figure can end the script block.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plotly.io.json import to_json_plotly  # type: ignore[import-untyped, unused-ignore]

__all__ = ["Chart", "Series", "heatmap", "lines", "scatter", "text"]

# Figures are plain dicts in plotly's figure schema (tests validate them with
# plotly.graph_objects): building graph objects costs ~20 ms a figure, and a full run has
# hundreds. The layout below replaces plotly's default template (about 7 kB a figure).
_LAYOUT: dict[str, Any] = {
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "colorway": ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f"],
    "paper_bgcolor": "white", "plot_bgcolor": "#fafafa", "hovermode": "closest",
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
}
_AXIS = {"gridcolor": "#e5e5e5", "zeroline": False}


def text(value: Any) -> str:
    """A label from the data, safe for plotly's text (which reads a few HTML tags)."""
    return html.escape(str(value), quote=False)


@dataclass(frozen=True)
class Chart:
    """A figure ready for a page: element id, height in pixels, figure JSON."""

    id: str
    height: int
    figure_json: str


@dataclass(frozen=True)
class Series:
    """One line of a line chart; ``hover`` is one (already safe) text per point."""

    name: str
    x: Sequence[float | None]
    y: Sequence[float | None]
    hover: Sequence[str]
    dash: str | None = None
    color: str | None = None
    symbol: str | None = None


def _chart(chart_id: str, data: list[dict[str, Any]], layout: dict[str, Any],
           height: int) -> Chart:
    figure = {"data": data, "layout": {**_LAYOUT, **layout, "height": height}}
    payload = to_json_plotly(figure)
    payload = payload.replace("</", "<\\/")  # belt and braces: plotly already escapes "<"
    return Chart(chart_id, height, payload)


def _clean(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def _axis(title: str, log: bool, **extra: Any) -> dict[str, Any]:
    return {**_AXIS, "title": {"text": text(title)}, "type": "log" if log else "linear",
            **extra}


def _title(title: str) -> dict[str, Any]:
    return {"text": text(title), "font": {"size": 14}}


def _trace(s: Series, mode: str) -> dict[str, Any]:
    trace: dict[str, Any] = {"type": "scatter", "mode": mode, "name": text(s.name),
                             "x": _clean(s.x), "y": _clean(s.y), "text": list(s.hover),
                             "hovertemplate": "%{text}<extra></extra>"}
    line = {k: v for k, v in (("dash", s.dash), ("color", s.color)) if v}
    marker: dict[str, Any] = {"size": 10} if mode == "markers" else {}
    if s.symbol:
        marker["symbol"] = s.symbol
    if s.color:
        marker["color"] = s.color
    if line and mode != "markers":
        trace["line"] = line
    if marker:
        trace["marker"] = marker
    return trace


def lines(chart_id: str, series: Sequence[Series], *, title: str, x_title: str, y_title: str,
          log_x: bool = True, log_y: bool = False, height: int = 380) -> Chart:
    """Lines with markers, one per series; hover shows each point's text."""
    layout = {"title": _title(title), "xaxis": _axis(x_title, log_x),
              "yaxis": _axis(y_title, log_y, rangemode="tozero"),
              "legend": {"font": {"size": 11}}}
    return _chart(chart_id, [_trace(s, "lines+markers") for s in series], layout, height)


def scatter(chart_id: str, series: Sequence[Series], *, title: str, x_title: str,
            y_title: str, log_x: bool = True, log_y: bool = True, height: int = 420) -> Chart:
    """Markers only, one trace per series."""
    layout = {"title": _title(title), "xaxis": _axis(x_title, log_x),
              "yaxis": _axis(y_title, log_y)}
    return _chart(chart_id, [_trace(s, "markers") for s in series], layout, height)


def heatmap(chart_id: str, rows: Sequence[str], columns: Sequence[str],
            z: Sequence[Sequence[float | None]], cells: Sequence[Sequence[Sequence[Any]]], *,
            hover: str, title: str, colorbar: str, zmin: float | None = None,
            zmax: float | None = None) -> Chart:
    """A heatmap, rows top to bottom in the given order; empty cells stay blank.

    ``cells`` holds a few values per cell (plotly's customdata, already safe text or numbers)
    that ``hover`` (a plotly hovertemplate) shows as ``%{customdata[i]}`` after the row and
    column names: cheaper than a full hover text per cell.
    """
    trace = {"type": "heatmap",
             "z": [[None if v is None or not math.isfinite(v) else v for v in row] for row in z],
             "x": [text(c) for c in columns], "y": [text(r) for r in rows],
             "customdata": [[list(c) for c in row] for row in cells],
             "hovertemplate": "%{y}<br>%{x}<br>" + hover + "<extra></extra>",
             "colorscale": "YlOrRd", "reversescale": True,  # light = small, red = large
             "colorbar": {"title": {"text": text(colorbar)}},
             "xgap": 1, "ygap": 1, "hoverongaps": False}
    if zmin is not None:
        trace["zmin"] = zmin
    if zmax is not None:
        trace["zmax"] = zmax
    height = max(260, 22 * len(rows) + 200)
    layout = {"title": _title(title),
              "yaxis": {"autorange": "reversed", "automargin": True, "tickfont": {"size": 10}},
              "xaxis": {"tickangle": -40, "automargin": True, "tickfont": {"size": 10},
                        "side": "top"},
              "margin": {"l": 20, "r": 20, "t": 60, "b": 20}}
    return _chart(chart_id, [trace], layout, height)
