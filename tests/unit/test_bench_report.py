"""The benchmark's pure parts, without Redis or the bench extra: the regression guard, the
cluster share model, the fleet-scale arithmetic, the targets (including the verdict on a run
whose paired figures the machine's load made meaningless) and the peer table."""

from __future__ import annotations

from typing import Any

import pytest
from bench.report import render, targets
from bench.scale import GUARD_LIMIT, busiest_share, fleet_scale, guard


def _cases(get3: float, minimal: float) -> dict[str, float]:
    return {
        "plain GET": 0.2,
        "get-3.lua (fleetcache get hit)": get3,
        "minimal get-and-count (GET + 2 HINCRBY)": minimal - 0.8,
        "same + tokens_saved (GET + 3 HINCRBY)": minimal,
        "no-op script": 0.5,
    }


def test_guard_flags_only_above_the_limit() -> None:
    assert guard(_cases(4.0, 4.0))["ok"]
    assert guard(_cases(GUARD_LIMIT * 4.0 - 0.01, 4.0))["ok"]
    g = guard(_cases(6.0, 4.0))
    assert not g["ok"]
    assert g["ratio"] == pytest.approx(1.5)


def test_busiest_share_bounds() -> None:
    # one shard: all of the namespace on one node, whatever the cluster
    assert busiest_share(3, 1, namespaces=20) == (1.0, 1.0)
    # one node: everything on it
    assert busiest_share(1, 64, namespaces=20) == (1.0, 1.0)
    med, p95 = busiest_share(3, 64, namespaces=50)
    assert 1 / 3 <= med <= p95 < 0.6  # spread, never better than the ideal third
    med30, _ = busiest_share(30, 600, namespaces=20)
    assert 1 / 30 <= med30 < med


def _fleet(server_us: float, cpu_us: float, client_rate: float) -> dict[str, Any]:
    return {
        "fleet": {
            "ops": {"fleetcache get hit": {"1": client_rate, "2": client_rate * 1.5}},
            "server_us": {"fleetcache get hit": {"1": server_us, "2": server_us}},
            "server_cpu_us": {"fleetcache get hit": {"1": cpu_us, "2": cpu_us}},
        }
    }


def test_fleet_scale_arithmetic() -> None:
    fs = fleet_scale(_fleet(server_us=5.0, cpu_us=20.0, client_rate=10_000.0))
    assert fs["core_hits_per_s"] == pytest.approx(50_000.0)
    assert fs["io_us_per_request"] == pytest.approx(15.0)
    rows = {(r["nodes"], r["shards"]): r for r in fs["rows"]}
    assert rows[(1, 1)]["hits_per_s"] == pytest.approx(50_000.0)
    assert rows[(1, 1)]["client_processes"] == pytest.approx(5.0)
    # S < nodes spreads nothing; more shards spread more
    assert rows[(3, 1)]["hits_per_s"] == pytest.approx(50_000.0)
    assert rows[(3, 64)]["hits_per_s"] > rows[(3, 3)]["hits_per_s"] > 50_000.0
    assert rows[(30, 600)]["hits_per_s"] > rows[(30, 64)]["hits_per_s"]
    assert fleet_scale({}) == {}


def _paired(raw: float, bare: float, hit: float) -> dict[str, Any]:
    return {
        "throughput": {
            "1 KB": {
                "paired": {
                    "raw GET": raw,
                    "bare EVALSHA get-3 (no client work)": bare,
                    "fleetcache get hit": hit,
                },
                "paired_peers": {
                    "raw GET": raw,
                    "fleetcache get hit": hit,
                    "incumbent get hit (url=, as shipped)": hit / 6,
                    "litellm RedisCache get hit": hit / 2,
                },
            }
        }
    }


def _verdict(res: dict[str, Any], start: str) -> tuple[str, bool | None]:
    (row,) = [(v, ok) for name, v, ok in targets(res) if name.startswith(start)]
    return row


def test_targets_met_missed_and_unreliable() -> None:
    assert _verdict(_paired(20_000, 16_000, 14_000), "get hit >= 0.65x raw GET ops/s") == (
        "0.70x",
        True,
    )
    assert _verdict(_paired(20_000, 16_000, 12_000), "get hit >= 0.65x raw GET ops/s")[1] is False
    # a hit faster than a bare EVALSHA of its own script: the load decided, not the code
    val, ok = _verdict(_paired(20_000, 12_000, 15_000), "get hit >= 0.65x raw GET ops/s")
    assert ok is None and "unreliable" in val
    assert _verdict(_paired(20_000, 16_000, 14_000), "get hit >= 1.0x LiteLLM RedisCache") == (
        "2.00x",
        True,
    )
    assert _verdict(_paired(20_000, 16_000, 14_000), "get hit >= 5x incumbent")[1] is True


def test_render_has_peer_table_and_verdicts() -> None:
    res = _paired(20_000, 12_000, 15_000)
    res["throughput"]["1 KB"].update(
        ops={
            "raw GET": {"median": 20_000.0, "min": 19_000.0, "max": 21_000.0, "n": 5},
            "fleetcache put": {"median": 9_000.0, "min": 8_000.0, "max": 9_500.0, "n": 5},
        },
        bytes={"fleetcache envelope": 972, "incumbent JSON": 1057},
        peers={"litellm RedisCache": {"counts": "nothing", "how_many": "cannot"}},
    )
    text = render(res)
    assert "## fleetcache and the caches a team would pick instead" in text
    assert "| litellm RedisCache | 7,500 |" in text
    assert "| unreliable |" in text
