"""The demo's PNG chart, drawn by matplotlib (the ``demo`` extra) with the Agg backend: no
display needed, and no global pyplot state (a ``Figure`` of its own).

Top: the fleet hit rate since the start and over each sampling interval. Middle: requests
and LLM calls made, both cumulative; the band between them is the LLM calls the cache
avoided. Bottom: what the hits saved, cumulative: dollars (left axis, priced when each
answer was written) and LLM time in seconds (right axis). Without matplotlib the demo
prints ``MISSING_HINT`` and writes no chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .view import Sample

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MISSING_HINT = "no chart: matplotlib is not installed (pip install 'fleetcache[demo]')"


def hit_rates(samples: Sequence[Sample]) -> tuple[list[float], list[float], list[float]]:
    """``(since_start, t_interval, per_interval)`` from cumulative samples: the hit rate
    since the start at every sample (%), and the end time (s) and hit rate (%) of each
    interval between two samples that saw requests."""
    since: list[float] = []
    t_int: list[float] = []
    per: list[float] = []
    prev: Sample | None = None
    for s in samples:
        total = s.hits + s.misses
        since.append(100.0 * s.hits / total if total else 0.0)
        if prev is not None:
            d = total - (prev.hits + prev.misses)
            if d > 0:
                t_int.append(s.t)
                per.append(100.0 * (s.hits - prev.hits) / d)
        prev = s
    return since, t_int, per


def build_figure(samples: Sequence[Sample], title: str) -> Figure:
    """The chart as a matplotlib ``Figure`` (10 x 8.8 in at 100 dpi: 1000 x 880 px)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    fig = Figure(figsize=(10, 8.8), dpi=100, layout="constrained")
    top, bottom, saved = fig.subplots(3, 1, sharex=True, height_ratios=(1.0, 1.0, 0.8))
    t = [s.t for s in samples]
    since, t_int, per = hit_rates(samples)

    top.plot(t_int, per, color="#9ecae1", linewidth=1.5, label="per sampling interval")
    top.plot(t, since, color="#1f62b4", linewidth=2.5, label="since the start")
    top.set_ylim(0, 100)
    top.yaxis.set_major_formatter(PercentFormatter())
    top.set_ylabel("fleet hit rate")
    top.set_title("Fleet hit rate (read from Redis: the number every worker sees)")
    top.grid(alpha=0.3)
    top.legend(loc="lower right")

    requests = [s.requests for s in samples]
    llm = [s.llm_calls for s in samples]
    bottom.fill_between(t, llm, requests, color="#c7e9c0", label="LLM calls avoided")
    bottom.plot(t, requests, color="#666666", linewidth=2.5, label="requests")
    bottom.plot(t, llm, color="#c82828", linewidth=2.5, label="LLM calls made")
    bottom.set_ylim(bottom=0)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    bottom.set_ylabel("count since the start")
    bottom.set_title("Requests vs LLM calls made")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left")
    bottom.set_xlim(0, max(t, default=1.0) or 1.0)

    usd = [s.cost_saved_usd for s in samples]
    secs = [s.seconds_saved for s in samples]
    saved.plot(t, usd, color="#2a8a3e", linewidth=2.5, label="$ saved")
    saved.set_ylim(bottom=0)
    saved.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:,.4g}"))
    saved.set_ylabel("$ saved (priced when written)")
    saved.set_xlabel("time since the start (s)")
    saved.set_title("What the hits saved: dollars and LLM time")
    saved.grid(alpha=0.3)
    time_axis = saved.twinx()
    time_axis.plot(t, secs, color="#8c564b", linewidth=2.0, linestyle="--", label="LLM time")
    time_axis.set_ylim(bottom=0)
    time_axis.set_ylabel("LLM seconds saved")
    lines = saved.get_lines() + time_axis.get_lines()
    saved.legend(lines, [str(line.get_label()) for line in lines], loc="upper left")

    fig.suptitle(title, fontsize=14, fontweight="bold")
    return fig


def draw_chart(samples: Sequence[Sample], path: Path, title: str) -> Path:
    """Write the chart to ``path`` (PNG). ``ImportError`` without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = build_figure(samples, title)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")
    return path
