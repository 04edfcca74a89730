"""The Grafana dashboard in docs/grafana: valid JSON whose every PromQL query names only
metrics the collector exports, checked against the collector's real output on a real server
(so a renamed or removed metric fails here, not on a blank panel)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.metrics import FleetCacheCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "fleetcache.json"
#: a metric name in PromQL (label names and functions never start with fleetcache_)
METRIC = re.compile(r"\bfleetcache_[a-z0-9_]+\b")


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _queries(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return exprs


def _exported(cache: RedisExactCache) -> set[str]:
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(cache))
    text = generate_latest(reg).decode()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.mark.backends("redis")
def test_every_metric_the_dashboard_queries_is_exported(
    make_cache: Callable[..., RedisExactCache],
) -> None:
    cache = make_cache(prices={"m": (1.0, 2.0)})
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    cache.put("q", "s", "m", 0.0, 8, LLMResponse(content="a", usage=usage), upstream_ms=50)
    assert cache.get("q", "s", "m", 0.0, 8) is not None
    exported = _exported(cache)
    queried = {name for expr in _queries(_dashboard()) for name in METRIC.findall(expr)}
    assert queried, "the dashboard queries no fleetcache metric"
    assert queried - exported == set()
    # the savings the dashboard is about are among them
    assert {
        "fleetcache_cost_saved_usd_total",
        "fleetcache_model_cost_saved_usd_total",
        "fleetcache_seconds_saved_total",
        "fleetcache_input_tokens_saved_total",
        "fleetcache_output_tokens_saved_total",
        "fleetcache_saved_rate",
        "fleetcache_entries",
        "fleetcache_corrupt_total",
        "fleetcache_forged_total",
        "fleetcache_bad_counters",
    } <= queried


def test_dashboard_panels_each_query_something_and_filter_by_namespace() -> None:
    dash = _dashboard()
    names = [v["name"] for v in dash["templating"]["list"]]
    assert "namespace" in names
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["title"] and panel["targets"], panel["title"]
        for target in panel["targets"]:
            for name in METRIC.findall(target["expr"]):
                # every metric selector in a query keeps to the chosen namespaces
                assert re.search(rf'{name}\{{namespace=~"\$namespace"\}}', target["expr"]), (
                    panel["title"],
                    name,
                )
