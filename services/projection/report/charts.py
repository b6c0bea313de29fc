"""Charts of the report as PNG bytes (matplotlib, Agg backend, no display).

Deterministic: a fixed font shipped with matplotlib (DejaVu Sans), fixed size and resolution,
fixed hash salt, no timestamps or software tag in the PNG metadata, so the same chart gives the
same bytes on every run (the report's reproducibility rests on it).
"""

from __future__ import annotations

import io
import threading
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from services.projection.report.document import Chart

_STYLE: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "svg.hashsalt": "dcr-report",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titleweight": "bold",
}
BLUE = "#1f5f8b"
ORANGE = "#d9822b"
GREY = "#666666"
WIDTH_IN, HEIGHT_IN, DPI = 7.0, 3.0, 150
#: rc_context changes matplotlib's global settings: one chart at a time (API worker threads).
_LOCK = threading.Lock()


def render_png(chart: Chart) -> bytes:
    with _LOCK, matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        ax = fig.subplots()
        if chart.kind == "street":
            _street(ax, chart)
        else:
            _bars(ax, chart)
        ax.set_title(chart.title, loc="left", fontsize=10)
        ax.set_ylabel(chart.ylabel)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(
            mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
        )
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()


def _x(d: date) -> float:
    """matplotlib's date number of a day (days since its default epoch, 1970-01-01)."""
    return float((d - _EPOCH).days)


_EPOCH = date(1970, 1, 1)


def _bars(ax: Axes, chart: Chart) -> None:
    values = [v or 0.0 for v in chart.values]
    ax.bar([_x(d) for d in chart.days], values, width=0.8, color=BLUE)
    if chart.days:
        mean = sum(values) / len(values)
        ax.axhline(mean, color=ORANGE, linewidth=1.2, label=f"mean {mean:,.1f} a day")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _mark_opening(ax, chart.marker)
    ax.set_ylim(bottom=0)


def _street(ax: Axes, chart: Chart) -> None:
    days = [_x(d) for d in chart.days]
    values = [v if v is not None else float("nan") for v in chart.values]
    ax.plot(days, values, marker="o", markersize=3, linewidth=1, color=BLUE, label="kg collected")
    change = chart.change
    marker = chart.marker
    if change is not None and marker is not None and days:
        first, last, opened = days[0], days[-1] + 1, _x(marker)
        for lo, hi, m, low, high in (
            (first, opened, change.before.mean, change.before.low, change.before.high),
            (opened, last, change.after.mean, change.after.low, change.after.high),
        ):
            ax.hlines(m, lo, hi, colors=ORANGE, linewidth=2)
            if low is not None and high is not None:
                ax.fill_between([lo, hi], low, high, color=ORANGE, alpha=0.18, linewidth=0)
        ax.plot([], [], color=ORANGE, linewidth=2, label="mean with 95% CI")
    _mark_opening(ax, marker)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", frameon=True, framealpha=0.9, edgecolor="none")


def _mark_opening(ax: Axes, marker: date | None) -> None:
    if marker is None:
        return
    ax.axvline(_x(marker), color=GREY, linestyle="--", linewidth=1, zorder=3)
    ax.annotate(
        f"room opened {marker.isoformat()}",
        xy=(_x(marker), 0.04),
        xycoords=("data", "axes fraction"),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=8,
        color=GREY,
        bbox={"boxstyle": "square,pad=0.2", "facecolor": "white", "edgecolor": "none"},
    )
