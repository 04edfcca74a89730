"""bench/results.png with matplotlib (the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chart(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle("fleetcache vs the limit (raw GET) and the incumbent — bench/RESULTS.md")
    thr = res.get("throughput", {})
    ax = axes[0][0]
    names = [
        ("raw GET", "raw GET"),
        ("fleetcache get hit", "fleetcache get"),
        ("fleetcache async get hit", "fleetcache async get"),
        ("incumbent get hit (client=)", "incumbent (client=)"),
        ("incumbent get hit (url=, as shipped)", "incumbent (url=)"),
    ]
    width = 0.38
    for j, lb in enumerate(thr):
        vals = [thr[lb]["ops"].get(n, {}).get("median", 0) for n, _ in names]
        xs = [i + (j - 0.5) * width for i in range(len(names))]
        bars = ax.bar(xs, vals, width, label=lb)
        ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in vals], fontsize=7)
    ax.set_xticks(range(len(names)), [s for _, s in names], rotation=15, fontsize=8)
    ax.set_ylabel("get hits / s (one client)")
    ax.set_title("Get hit throughput")
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
    ax.set_title("Size / stats query time")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    mem = res.get("bytes_per_entry", {})
    labels = list(mem)
    xm = [float(i) for i in range(len(labels))]
    e = [mem[lb]["fleetcache entry"] for lb in labels]
    idx = [
        mem[lb]["fleetcache index share"] + mem[lb]["fleetcache counters share"] for lb in labels
    ]
    inc = [mem[lb]["incumbent entry"] for lb in labels]
    ax.bar([x - 0.2 for x in xm], e, 0.4, label="fleetcache entry")
    ax.bar([x - 0.2 for x in xm], idx, 0.4, bottom=e, label="fleetcache index+counters share")
    b = ax.bar([x + 0.2 for x in xm], inc, 0.4, label="incumbent entry (JSON)")
    ax.bar_label(b, fmt="%.0f", fontsize=7)
    for x, a, c in zip(xm, e, idx, strict=True):
        ax.text(x - 0.2, a + c, f"{a + c:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xm), labels)
    ax.set_ylabel("bytes in Redis per entry")
    ax.set_title("Memory per entry")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    fleet = res.get("fleet", {}).get("ops", {})
    for name, vals in fleet.items():
        pts = sorted((int(k), v) for k, v in vals.items())
        ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=f"{name} (1 KB)")
    ax.set_xlabel("processes")
    ax.set_ylabel("total ops/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Fleet throughput, one server (2-core VM)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
