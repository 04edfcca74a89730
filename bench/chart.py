"""bench/results.png with matplotlib (the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (results name, chart label) of the get-hit bars, from the paired group with the peers
HIT_BARS = (
    ("raw GET", "raw GET"),
    ("fleetcache get hit", "fleetcache"),
    ("incumbent get hit (client=)", "ractogateway\n(client=)"),
    ("litellm RedisCache get hit", "LiteLLM\nRedisCache"),
    ("fleetcache FleetLiteLLMBackend get hit", "fleetcache as\nLiteLLM backend"),
    ("langchain-community RedisCache get hit", "LangChain\nRedisCache"),
    ("fleetcache FleetLangChainCache get hit", "fleetcache as\nLangChain cache"),
)
# (results key in bytes_per_entry, chart label)
MEM_BARS = (
    ("fleetcache total", "fleetcache\n(incl. index)"),
    ("incumbent entry", "ractogateway"),
    ("litellm RedisCache total", "LiteLLM"),
    ("langchain-community RedisCache total", "LangChain"),
)


def chart(res: dict[str, Any], path: Path) -> None:
    """Four panels: get hits/s per cache, size-query time, bytes per entry, fleet ops/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5))
    fig.suptitle(
        "fleetcache vs raw GET, ractogateway, LiteLLM and LangChain Redis caches "
        "(one private Redis, bench/RESULTS.md)"
    )
    thr = res.get("throughput", {})
    ax = axes[0][0]
    width = 0.38
    for j, lb in enumerate(thr):
        # ratios to raw GET within one paired group: the load level of each group and size
        # cancels out (absolute ops/s are in RESULTS.md)
        group = thr[lb].get("paired_peers") or thr[lb].get("paired", {})
        raw = group.get("raw GET") or 1.0
        vals = [group.get(n, 0.0) / raw for n, _ in HIT_BARS]
        xs = [i + (j - 0.5) * width for i in range(len(HIT_BARS))]
        bars = ax.bar(xs, vals, width, label=lb)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=7)
    ax.set_xticks(range(len(HIT_BARS)), [s for _, s in HIT_BARS], fontsize=7)
    ax.set_ylabel("get hits/s as a fraction of raw GET's (one client, paired)")
    ax.set_title("Get hit throughput, relative to a raw GET")
    ax.legend()

    ax = axes[0][1]
    size = res.get("size_ms", {})
    for name, vals in size.items():
        pts = sorted((int(k), v) for k, v in vals.items())
        if pts:
            ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
    ax.text(1000, 2.3, "2 ms target", fontsize=7, color="grey")
    ax.set_xlabel("entries")
    ax.set_ylabel("ms per call")
    ax.set_title("How many entries: len() / stats time (LiteLLM, LangChain: cannot)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    mem = res.get("bytes_per_entry", {})
    for j, lb in enumerate(mem):
        vals = [float(mem[lb].get(k, 0.0)) for k, _ in MEM_BARS]
        xs = [i + (j - 0.5) * width for i in range(len(MEM_BARS))]
        bars = ax.bar(xs, vals, width, label=lb)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(MEM_BARS)), [s for _, s in MEM_BARS], fontsize=8)
    ax.set_ylabel("bytes in Redis per entry (MEMORY USAGE)")
    ax.set_title("Memory per entry")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    fleet = res.get("fleet", {}).get("ops", {})
    procs: set[int] = set()
    for name, vals in fleet.items():
        pts = sorted((int(k), v) for k, v in vals.items())
        procs.update(p for p, _ in pts)
        ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=f"{name} (1 KB)")
    ax.set_xticks(sorted(procs))
    ax.set_xlabel("client processes")
    ax.set_ylabel("total ops/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Fleet throughput, one server (clients share its 2-core VM)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
