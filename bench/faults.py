"""The fault-injection suite's figures (``bench/faults-summary.json``, written by
``make faults``) folded into the results and rendered as a RESULTS.md section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY = Path(__file__).resolve().parent / "faults-summary.json"


def fold_faults(res: dict[str, Any], path: Path = SUMMARY) -> None:
    """Put the latest fault-suite summary (if any) into ``res["faults"]``."""
    if path.exists():
        res["faults"] = json.loads(path.read_text())


def render_faults(f: dict[str, Any]) -> list[str]:
    lines = [
        "## Fault-injection suite (`pytest -m faults`)",
        "",
        f"Latest run {f.get('when', '?')} (each scenario keeps its latest result; the soak "
        "duration is in its name). "
        "Every scenario runs against its own private `redis-server`.",
        "",
        "| scenario | invariant | operations | failures seen | data lost | result |",
        "|---|---|---|---|---|---|",
    ]
    total_ops = 0
    for s in f.get("scenarios", []):
        total_ops += int(s.get("operations", 0))
        lines.append(
            f"| {s['name']} | {s['invariant']} | {s.get('operations', 0):,} | "
            f"{s.get('failures', 0)} | {s.get('data_lost', 0)} | {s.get('result', '?')} |"
        )
    lines += [
        "",
        f"{len(f.get('scenarios', []))} scenarios, {total_ops:,} cache operations issued. "
        "'failures seen' counts exceptions that reached a caller or broken invariants; "
        "'data lost' counts acknowledged state (counters, index) that did not survive when it "
        "should have.",
        "",
        "Notes:",
        "",
        "- kill -9: the private server runs without persistence, so entries written before "
        "the kill are gone after the restart by design; nothing reached a caller and the same "
        "cache object served again.",
        "- noeviction at OOM: gets keep returning entries; the get script's counter writes "
        "(pcall) are refused while the server is out of memory, so those hits may go "
        "uncounted (`hits_counted_during_oom` in `bench/faults-summary.json`).",
        "- allkeys-lru: the scenario ages the first half of the entries past one tick of "
        "Redis's LRU clock (1 s) before overfilling. In a pure burst (every key younger "
        "than one tick) Redis may evict the index or the counters hash too: seen in 1 of 3 "
        "such runs, after which size and counters are wrong and `reconcile()` cannot repair "
        "them. Prefer `volatile-lru` (with entry TTLs) or `allkeys-lfu` for a shared cache.",
    ]
    lines += _lease_notes(f.get("scenarios", []))
    lines.append("")
    return lines


def _lease_notes(scenarios: list[dict[str, Any]]) -> list[str]:
    """One note per single-flight lease scenario that recorded its waiters' worst wait."""
    out = []
    for s in scenarios:
        if "worst_wait_s" not in s:
            continue
        out.append(
            f"- {s['name']}: the other callers' worst wait was {s['worst_wait_s']} s with "
            f"`lease_seconds={s.get('lease_seconds', '?')}` (a grant lasts "
            f"{s.get('grant_s', '?')} s until its holder confirms it; before, the waiters "
            "sat out the whole lease)."
        )
    return out
