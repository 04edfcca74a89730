"""What the demo shows as text: fleet-wide samples over time, the live status line, and the
end-of-run summary table. Pure formatting: the numbers come from ``run``."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.models import FleetStats


@dataclass
class Sample:
    """Fleet-wide numbers at one moment of the run (``t`` in seconds since the start)."""

    t: float
    requests: int
    llm_calls: int
    hits: int
    misses: int
    coalesced: int
    size: int
    tokens_saved: int
    #: USD the hits saved (fleet counter, priced when each answer was written)
    cost_saved_usd: float = 0.0
    #: upstream seconds the hits saved (fleet counter)
    seconds_saved: float = 0.0


def live_line(s: Sample, prev: Sample | None) -> str:
    """One status line: totals, the hit rate since the start and since ``prev``."""
    total = s.hits + s.misses
    rate = s.hits / total if total else 0.0
    recent = ""
    if prev is not None:
        d_hits = s.hits - prev.hits
        d_total = d_hits + s.misses - prev.misses
        if d_total:
            recent = f" (now {d_hits / d_total:4.0%})"
    avoided = max(0, s.requests - s.llm_calls)
    return (
        f"{s.t:5.1f}s  requests {s.requests:>6,}  hit rate {rate:5.1%}{recent}  "
        f"entries {s.size:>5,}  saved ${s.cost_saved_usd:,.4f} {s.seconds_saved:,.1f} s  "
        f"LLM calls {s.llm_calls:>5,} made / {avoided:>6,} avoided"
    )


def summary(
    fs: FleetStats,
    s: Sample,
    *,
    workers: int,
    prompts: int,
    zipf: float,
    elapsed: float,
    wait_s: float,
    errors: int,
) -> str:
    """The end-of-run table: ``fs`` read from Redis, ``s`` the last sample, ``elapsed`` and
    ``wait_s`` (all workers' time spent in cache calls) in seconds."""
    avoided = max(0, s.requests - s.llm_calls)
    pct = avoided / s.requests if s.requests else 0.0
    rows = [
        ("workers", f"{workers}"),
        ("duration", f"{elapsed:.1f} s"),
        ("requests", f"{s.requests:,}"),
        ("distinct prompts in the pool", f"{prompts:,} (Zipf s={zipf:g})"),
        ("fleet hits / misses", f"{fs.hits:,} / {fs.misses:,}"),
        ("fleet hit rate", f"{fs.hit_rate:.1%}"),
        ("coalesced (waited on a peer)", f"{fs.coalesced:,}"),
        ("entries in the cache", f"{fs.size:,}"),
        ("LLM calls made", f"{s.llm_calls:,}"),
        ("LLM calls avoided", f"{avoided:,} ({pct:.1%})"),
        ("tokens saved (fleet counter)", f"{fs.tokens_saved:,}"),
        (
            "tokens saved in / out",
            f"{fs.input_tokens_saved:,} / {fs.output_tokens_saved:,}",
        ),
        ("$ saved (priced at write)", f"${fs.cost_saved_usd:,.4f}"),
        ("LLM time saved", f"{fs.seconds_saved:,.1f} s"),
        ("mean request latency", f"{1000 * wait_s / max(1, s.requests):.1f} ms"),
        ("errors", f"{errors:,}"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = ["", "summary (fleet-wide numbers read from Redis)", "-" * (w + 24)]
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    if fs.by_model:
        lines.append("")
        lines.append(
            f"{'model':<12}{'hits':>10}{'misses':>10}{'hit rate':>10}{'$ saved':>12}"
            f"{'time saved':>12}"
        )
        for name in sorted(fs.by_model, key=lambda n: -fs.by_model[n].cost_saved_nanousd):
            m = fs.by_model[name]
            lines.append(
                f"{name:<12}{m.hits:>10,}{m.misses:>10,}{m.hit_rate:>10.1%}"
                f"{'$' + format(m.cost_saved_usd, ',.4f'):>12}{m.seconds_saved:>10,.1f} s"
            )
    return "\n".join(lines)
