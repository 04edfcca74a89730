"""The Prometheus collector: fleet-wide numbers read from Redis at scrape time, served over
HTTP by ``fleetcache metrics`` and parsed with prometheus_client's own text parser."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from typing import IO

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleetcache import LLMResponse, RedisExactCache
from fleetcache.metrics import FleetCacheCollector

from ..support.servers import ServerProc, free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _fill(cache: RedisExactCache) -> None:
    for i in range(3):
        model = "m-large" if i == 0 else "m-small"
        cache.put(
            f"q{i}", "sys", model, 0.0, 8, LLMResponse(content="a", usage={"total_tokens": 7})
        )
    cache.get("q0", "sys", "m-large", 0.0, 8)
    cache.get("q1", "sys", "m-small", 0.0, 8)
    cache.get("nope", "sys", "m-small", 0.0, 8)


def test_collector_in_process(make_cache: Callable[..., RedisExactCache], prefix: str) -> None:
    cache = make_cache()
    _fill(cache)
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(cache))
    text = generate_latest(reg).decode()
    assert "# HELP fleetcache_hits_total" in text
    assert "# TYPE fleetcache_entries gauge" in text
    s = _samples(text)
    ns = (("namespace", prefix),)
    assert s[("fleetcache_hits_total", ns)] == 2
    assert s[("fleetcache_misses_total", ns)] == 1
    assert s[("fleetcache_entries", ns)] == 3
    assert s[("fleetcache_tokens_saved_total", ns)] == 14
    assert s[("fleetcache_puts_total", ns)] == 3
    assert s[("fleetcache_up", ns)] == 1
    assert s[("fleetcache_model_hits_total", (("model", "m-large"), ("namespace", prefix)))] == 1
    assert s[("fleetcache_model_misses_total", (("model", "m-small"), ("namespace", prefix)))] == 1


def test_collector_reports_down_without_raising(prefix: str) -> None:
    dead = RedisExactCache(url=f"redis://127.0.0.1:{free_port()}/0", key_prefix=prefix)
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(dead))
    s = _samples(generate_latest(reg).decode())
    assert s[("fleetcache_up", (("namespace", prefix),))] == 0
    assert ("fleetcache_hits_total", (("namespace", prefix),)) not in s
    dead.close()


def test_collector_by_url_does_not_create_namespace(redis_proc: ServerProc, prefix: str) -> None:
    col = FleetCacheCollector(url=redis_proc.url, prefixes=(prefix,))
    reg = CollectorRegistry()
    reg.register(col)
    s = _samples(generate_latest(reg).decode())
    assert s[("fleetcache_entries", (("namespace", prefix),))] == 0
    with redis_proc.client() as c:
        assert c.exists(f"{{{prefix}}}:meta") == 0
    col.close()


def _read_line(stream: IO[str], timeout: float) -> str:
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: q.put(stream.readline()), daemon=True).start()
    return q.get(timeout=timeout)


def test_fleetcache_metrics_serves_http(redis_proc: ServerProc, prefix: str) -> None:
    cache = RedisExactCache(url=redis_proc.url, key_prefix=prefix, shards=2)
    _fill(cache)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetcache", "metrics", "--url", redis_proc.url,
         "--prefix", prefix, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = _read_line(proc.stdout, 30)
        assert "http://127.0.0.1:" in line, (line, proc.poll())
        url = line.split("at ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        s = _samples(text)
        ns = (("namespace", prefix),)
        assert s[("fleetcache_hits_total", ns)] == 2
        assert s[("fleetcache_entries", ns)] == 3
        # fleet-wide: a hit made by another process shows up at the next scrape
        cache.get("q2", "sys", "m-small", 0.0, 8)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert _samples(resp.read().decode())[("fleetcache_hits_total", ns)] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
        cache.close()
    assert rc == 0, proc.stderr.read()


def test_fleetcache_metrics_unreachable_is_an_error() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "fleetcache", "metrics", "--url",
         f"redis://127.0.0.1:{free_port()}/0", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 3
    assert "cannot reach Redis" in p.stderr and "Traceback" not in p.stderr


def test_odd_model_names_do_not_black_out_the_scrape(redis_proc: ServerProc, prefix: str) -> None:
    """A model name holding a lone surrogate (a valid ``str``) and a per-model counter field
    another client wrote with bytes that are not UTF-8: the HTTP scrape still answers 200,
    every sample is served, the odd names as escaped labels; the ``stats`` table shows them
    escaped, ``stats --json`` carries them exactly (JSON escapes, ASCII output)."""
    import json

    import redis as redis_py

    cache = RedisExactCache(url=redis_proc.url, key_prefix=prefix)
    _fill(cache)
    cache.get("q", "sys", "odd\ud800name", 0.0, 8)  # a miss for a lone-surrogate model
    raw = redis_py.Redis.from_url(redis_proc.url)
    raw.hset(f"{{{prefix}:0}}:s", b"mh:\xff\xferaw", b"5")  # not UTF-8, by another client
    raw.close()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetcache", "metrics", "--url", redis_proc.url,
         "--prefix", prefix, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = _read_line(proc.stdout, 30)
        assert "http://127.0.0.1:" in line, (line, proc.poll())
        url = line.split("at ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            text = resp.read().decode("utf-8")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
    assert rc == 0, proc.stderr.read()
    s = _samples(text)
    ns = (("namespace", prefix),)
    assert s[("fleetcache_up", ns)] == 1
    assert s[("fleetcache_hits_total", ns)] == 2
    assert s[("fleetcache_misses_total", ns)] == 2
    assert s[("fleetcache_model_hits_total", (("model", "m-large"), ("namespace", prefix)))] == 1
    odd = (("model", "odd\\ud800name"), ("namespace", prefix))
    assert s[("fleetcache_model_misses_total", odd)] == 1
    rawname = (("model", "\\udcff\\udcferaw"), ("namespace", prefix))
    assert s[("fleetcache_model_hits_total", rawname)] == 5
    assert s[("fleetcache_bad_counters", ns)] == 2  # the two names that needed escaping

    base = [
        sys.executable,
        "-m",
        "fleetcache",
        "stats",
        "--url",
        redis_proc.url,
        "--prefix",
        prefix,
    ]
    p = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert "odd\\ud800name" in p.stdout and "\\udcff\\udcferaw" in p.stdout
    p = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.isascii()  # JSON escapes: the exact names round-trip
    body = json.loads(p.stdout)
    assert body["by_model"]["odd\ud800name"]["misses"] == 1
    assert body["by_model"]["\udcff\udcferaw"]["hits"] == 5
    assert body["hits"] == 2 and body["misses"] == 2
    cache.close()


def test_savings_in_usd_seconds_and_tokens_fleet_wide_and_per_model(
    make_cache: Callable[..., RedisExactCache], prefix: str
) -> None:
    """A 1,000-in / 500-out answer at $2.5/M in, $10/M out, hit 3 times: $0.0225, 3,000 input
    and 1,500 output tokens, 3.6 s; a model without a price counts unpriced hits."""
    cache = make_cache(prices={"m-priced": (2.5, 10.0)})
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    cache.put(
        "q", "sys", "m-priced", 0.0, 8, LLMResponse(content="a", usage=usage), upstream_ms=1200
    )
    cache.put("q", "sys", "m-free", 0.0, 8, LLMResponse(content="b", usage=usage))
    for _ in range(3):
        assert cache.get("q", "sys", "m-priced", 0.0, 8) is not None
    assert cache.get("q", "sys", "m-free", 0.0, 8) is not None
    reg = CollectorRegistry()
    reg.register(FleetCacheCollector(cache))
    s = _samples(generate_latest(reg).decode())
    ns = (("namespace", prefix),)
    priced = (("model", "m-priced"), ("namespace", prefix))
    free = (("model", "m-free"), ("namespace", prefix))
    assert s[("fleetcache_cost_saved_usd_total", ns)] == pytest.approx(0.0225, rel=1e-12)
    assert s[("fleetcache_cost_saved_nanousd_total", ns)] == 22_500_000
    assert s[("fleetcache_input_tokens_saved_total", ns)] == 4000
    assert s[("fleetcache_output_tokens_saved_total", ns)] == 2000
    assert s[("fleetcache_seconds_saved_total", ns)] == 3.6
    assert s[("fleetcache_unpriced_hits_total", ns)] == 1
    assert s[("fleetcache_model_cost_saved_usd_total", priced)] == pytest.approx(0.0225)
    assert s[("fleetcache_model_input_tokens_saved_total", priced)] == 3000
    assert s[("fleetcache_model_output_tokens_saved_total", priced)] == 1500
    assert s[("fleetcache_model_seconds_saved_total", priced)] == 3.6
    assert s[("fleetcache_model_unpriced_hits_total", priced)] == 0
    assert s[("fleetcache_model_unpriced_hits_total", free)] == 1
    assert s[("fleetcache_model_cost_saved_usd_total", free)] == 0
