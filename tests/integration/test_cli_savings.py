"""What the cache saved, where operators look: ``fleetcache stats`` (money, tokens and time
saved, a per-model table sorted by money saved, ``--json``), and ``fleetcache namespaces``
(every namespace on the server found by a bounded SCAN of the layout records, with a total)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from fleetcache import LLMResponse, RedisExactCache
from fleetcache._admin import find_namespaces
from fleetcache.cli import main, usd

if TYPE_CHECKING:
    from ..conftest import Backend

#: USD per million tokens (input, output)
PRICES = {"m-dear": (2.5, 10.0), "m-cheap": (0.1, 0.4)}
#: 1,000 input tokens at $2.5/M + 500 output tokens at $10/M
DEAR_NANO = 7_500_000
#: 1,000 input tokens at $0.1/M + 500 output tokens at $0.4/M
CHEAP_NANO = 300_000


def q(i: int, model: str) -> tuple[str, str, str, float, int]:
    return (f"question {i}", "be brief", model, 0.0, 256)


def answer(i: int) -> LLMResponse:
    """A 1,000-in / 500-out answer."""
    return LLMResponse(
        content=f"answer {i}",
        usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    )


@pytest.fixture
def saved(make_cache: Callable[..., RedisExactCache]) -> RedisExactCache:
    """m-dear hit 3 times (1.2 s upstream each), m-cheap hit 5 times (0.2 s), one model
    without a price hit twice, one miss."""
    c = make_cache(prices=PRICES)
    c.put(*q(1, "m-dear"), answer(1), upstream_ms=1200)
    c.put(*q(2, "m-cheap"), answer(2), upstream_ms=200)
    c.put(*q(3, "m-unknown"), answer(3), upstream_ms=100)
    for fields, times in ((q(1, "m-dear"), 3), (q(2, "m-cheap"), 5), (q(3, "m-unknown"), 2)):
        for _ in range(times):
            assert c.get(*fields) is not None
    assert c.get(*q(9, "m-dear")) is None
    return c


def test_stats_shows_money_tokens_and_time_saved(
    backend: Backend, prefix: str, saved: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix]) == 0
    out = capsys.readouterr().out
    rows = dict(
        re.split(r"\s{2,}", line.strip(), maxsplit=1)
        for line in out.splitlines()[1:]
        if line.startswith("  ") and len(re.split(r"\s{2,}", line.strip())) == 2
    )
    assert usd((3 * DEAR_NANO + 5 * CHEAP_NANO) / 1e9) == "$0.024"
    assert "$ saved" in out and "$0.024  (+2 hits of unknown cost)" in out
    assert rows["tokens saved in"] == "10,000"
    assert rows["tokens saved out"] == "5,000"
    assert rows["time saved"] == "4.8 s"  # 3 x 1.2 + 5 x 0.2 + 2 x 0.1
    assert rows["saved rate"] == "90.9%"


def test_stats_model_table_is_sorted_by_money_saved(
    backend: Backend, prefix: str, saved: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["model"])
    table = [line.split() for line in lines[head + 1 :]]
    # m-cheap has more hits, m-dear saved more money: money decides
    assert [row[0] for row in table] == ["m-dear", "m-cheap", "m-unknown"]
    assert table[0][1:] == ["3", "1", "75.0%", "$0.0225", "3,000", "1,500", "3.6", "s", "0"]
    assert table[2][4] == "?" and table[2][-1] == "2"  # unknown cost, never a silent $0


def test_stats_json_carries_the_savings_per_model(
    backend: Backend, prefix: str, saved: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cost_saved_nanousd"] == 3 * DEAR_NANO + 5 * CHEAP_NANO
    assert data["cost_saved_usd"] == pytest.approx(0.024)
    assert data["seconds_saved"] == 4.8 and data["ms_saved"] == 4800
    assert (data["input_tokens_saved"], data["output_tokens_saved"]) == (10_000, 5_000)
    assert data["unpriced_hits"] == 2
    dear = data["by_model"]["m-dear"]
    assert dear == {
        "hits": 3,
        "misses": 1,
        "input_tokens_saved": 3000,
        "output_tokens_saved": 1500,
        "cache_read_tokens_saved": 0,
        "cache_write_tokens_saved": 0,
        "cost_saved_nanousd": 3 * DEAR_NANO,
        "ms_saved": 3600,
        "unpriced_hits": 0,
        "hit_rate": 0.75,
        "cost_saved_usd": 0.0225,
        "seconds_saved": 3.6,
    }
    assert data["by_model"]["m-unknown"]["unpriced_hits"] == 2
    assert data["by_model"]["m-unknown"]["cost_saved_nanousd"] == 0


def test_stats_of_a_missing_namespace_lists_the_ones_that_exist(
    backend: Backend, prefix: str, saved: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix + "-typo"]) == 4
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    listed = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    assert prefix in listed and prefix + "-typo" not in listed
    assert "--prefix" in err.splitlines()[-1]


def test_namespaces_lists_each_with_its_numbers_and_a_total(
    backend: Backend,
    make_cache: Callable[..., RedisExactCache],
    saved: RedisExactCache,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capped = make_cache(key_prefix=saved.key_prefix + "-capped", shards=3, max_entries=50)
    capped.put(*q(1, "m-x"), answer(1))
    assert main(["namespaces", "--url", backend.url]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert rows[saved.key_prefix] == [
        str(saved.shards),
        "-",
        "3",
        "90.9%",
        "90.9%",
        "$0.024",
        "4.8",
        "s",
    ]
    assert rows[capped.key_prefix][:3] == ["3", "50", "1"]
    assert "total" in rows

    assert main(["namespaces", "--url", backend.url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complete"] is True
    by_name = {n["namespace"]: n for n in data["namespaces"]}
    mine = by_name[saved.key_prefix]
    assert (mine["shards"], mine["max_entries"]) == (saved.shards, None)
    assert mine["stats"]["cost_saved_nanousd"] == 3 * DEAR_NANO + 5 * CHEAP_NANO
    assert mine["stats"]["size"] == 3 and mine["stats"]["hits"] == 10
    assert (by_name[capped.key_prefix]["shards"], by_name[capped.key_prefix]["max_entries"]) == (
        3,
        50,
    )
    readable = [n for n in data["namespaces"] if "stats" in n]
    for name in ("hits", "cost_saved_nanousd", "size", "input_tokens_saved"):
        assert data["total"][name] == sum(n["stats"][name] for n in readable)


def test_namespaces_leaves_out_other_applications_meta_keys(
    backend: Backend, prefix: str, r: Any, saved: RedisExactCache
) -> None:
    r.hset(f"{{{prefix}-hash}}:meta", "a", "1")  # another type under that name
    r.set(f"{{{prefix}-str}}:meta", "not a layout")
    r.set(f"{prefix}-plain:meta", "fleetcache-1;shards=1")  # no hash tag: not a record
    try:
        found = find_namespaces(r)
    finally:
        r.delete(f"{{{prefix}-hash}}:meta", f"{{{prefix}-str}}:meta", f"{prefix}-plain:meta")
    assert saved.key_prefix in found.prefixes
    assert not [p for p in found.prefixes if p.startswith(prefix + "-")]


@pytest.mark.backends("redis")
def test_namespace_scan_stops_at_its_cap_and_says_so(
    prefix: str, r: Any, make_cache: Callable[..., RedisExactCache]
) -> None:
    for i in range(5):
        make_cache(key_prefix=f"{prefix}-{i}").put(*q(i, "m"), answer(i))
    found = find_namespaces(r, count=1, max_calls=2)
    assert found.complete is False
    capped = find_namespaces(r, limit=2)
    assert len(capped.prefixes) == 2 and capped.complete is False
    assert {f"{prefix}-{i}" for i in range(5)} <= set(find_namespaces(r).prefixes)


def test_namespaces_reads_only(backend: Backend, r: Any, saved: RedisExactCache) -> None:
    before = sorted(r.scan_iter(count=1000)) if not backend.is_cluster else None
    assert main(["namespaces", "--url", backend.url, "--json"]) == 0
    if before is not None:
        assert sorted(r.scan_iter(count=1000)) == before
