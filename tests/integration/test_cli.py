"""The ``fleetcache`` command, in-process (``main([...])``) and as a subprocess, against the
session's test server (never port 6379)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fleetcache import ChunkProgress, LLMResponse, RedisExactCache
from fleetcache.cli import main
from fleetcache.core.keys import KeySpace, digest_of, normalise_request

from ..support.servers import AuthServer, ServerProc, free_port

if TYPE_CHECKING:
    from ..conftest import Backend


def _fields(i: int, model: str = "m-small") -> tuple[str, str, str, float, int]:
    return (f"question {i}", "sys", model, 0.0, 64)


def _resp(i: int) -> LLMResponse:
    return LLMResponse(content=f"answer {i}", usage={"total_tokens": 10})


@pytest.fixture
def filled(make_cache: Callable[..., RedisExactCache]) -> RedisExactCache:
    """3 entries; 2 hits (one per model) and 1 miss."""
    c = make_cache()
    for i in range(3):
        c.put(*_fields(i, "m-large" if i == 2 else "m-small"), _resp(i))
    assert c.get(*_fields(0)) is not None
    assert c.get(*_fields(2, "m-large")) is not None
    assert c.get(*_fields(99)) is None
    return c


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fleetcache", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=e,
    )


def test_stats_table(
    backend: Backend, prefix: str, filled: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix]) == 0
    out = capsys.readouterr().out
    assert f"namespace {prefix!r}" in out
    assert "hit rate" in out and "66.7%" in out
    assert "m-large" in out and "m-small" in out
    assert "tokens saved" in out


def test_stats_json_matches_fleet_stats(
    backend: Backend, prefix: str, filled: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", backend.url, "--prefix", prefix, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    fs = filled.fleet_stats()
    assert data["hits"] == fs.hits == 2
    assert data["misses"] == 1
    assert data["size"] == 3
    assert data["tokens_saved"] == 20
    assert data["shards"] == filled.shards
    large = data["by_model"]["m-large"]
    assert (large["hits"], large["misses"], large["hit_rate"]) == (1, 0, 1.0)


def test_stats_watch_refreshes(
    backend: Backend, prefix: str, filled: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["stats", "--url", backend.url, "--prefix", prefix, "--json", "--watch", "0.05"]
    assert main([*args, "--count", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all(json.loads(x)["size"] == 3 for x in lines)
    assert (
        main(["stats", "--url", backend.url, "--prefix", prefix, "--watch", "0.05", "--count", "2"])
        == 0
    )
    assert capsys.readouterr().out.count("refreshed") == 2


def test_stats_uses_recorded_shards(
    backend: Backend,
    prefix: str,
    make_cache: Callable[..., RedisExactCache],
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = make_cache(shards=4)
    for i in range(20):
        c.put(*_fields(i), _resp(i))
    assert main(["stats", "--url", backend.url, "--prefix", prefix, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shards"] == 4 and data["size"] == 20


def test_subprocess_stats_and_redis_url_env(
    backend: Backend, prefix: str, filled: RedisExactCache
) -> None:
    p = run_cli("stats", "--prefix", prefix, "--json", env={"REDIS_URL": backend.url})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["hits"] == 2


def test_console_script(backend: Backend, prefix: str, filled: RedisExactCache) -> None:
    exe = Path(sys.executable).with_name("fleetcache")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    p = subprocess.run(
        [str(exe), "stats", "--url", backend.url, "--prefix", prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert "hit rate" in p.stdout


def test_clear_needs_confirmation(backend: Backend, prefix: str, filled: RedisExactCache) -> None:
    p = run_cli("clear", "--url", backend.url, "--prefix", prefix, stdin="n\n")
    assert p.returncode == 1
    assert "aborted" in p.stdout
    assert len(filled) == 3
    p = run_cli("clear", "--url", backend.url, "--prefix", prefix)  # EOF: no answer
    assert p.returncode == 1 and len(filled) == 3
    p = run_cli("clear", "--url", backend.url, "--prefix", prefix, stdin="y\n")
    assert p.returncode == 0, p.stderr
    assert "3 live entries deleted" in p.stdout
    assert len(filled) == 0
    assert filled.fleet_stats().hits == 0


def test_clear_yes_with_progress(
    backend: Backend,
    prefix: str,
    make_cache: Callable[..., RedisExactCache],
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = make_cache()
    pipe_items = 1200  # > one chunk (500): progress is shown
    for i in range(pipe_items):
        c.put(*_fields(i), _resp(i))
    assert main(["clear", "--url", backend.url, "--prefix", prefix, "--yes"]) == 0
    cap = capsys.readouterr()
    assert "clearing shard 1/" in cap.err
    assert "1,200 live entries deleted" in cap.out
    assert len(c) == 0


def test_clear_progress_callback_core(make_cache: Callable[..., RedisExactCache]) -> None:
    c = make_cache(shards=1)
    for i in range(1100):
        c.put(*_fields(i), _resp(i))
    seen: list[ChunkProgress] = []
    c.clear(progress=seen.append)
    assert [p.left for p in seen] == [600, 100, 0]
    assert [p.calls for p in seen] == [1, 2, 3]


def test_reconcile_reports_removed(
    backend: Backend,
    prefix: str,
    filled: RedisExactCache,
    r: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digest = digest_of(normalise_request(*_fields(1)))
    ks = KeySpace(prefix, filled.shards)
    assert r.delete(ks.entry(ks.shard_of(digest), digest)) == 1  # vanished behind our back
    assert main(["reconcile", "--url", backend.url, "--prefix", prefix]) == 0
    out = capsys.readouterr().out
    assert "checked 3 index members" in out
    assert "removed 1 whose entry was gone (0 expired, 1 evicted)" in out
    assert filled.fleet_stats().evicted == 1


def test_reset_stats(
    backend: Backend, prefix: str, filled: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reset-stats", "--url", backend.url, "--prefix", prefix]) == 0
    assert "3 entries kept" in capsys.readouterr().out
    fs = filled.fleet_stats()
    assert (fs.hits, fs.misses, fs.size) == (0, 0, 3)


@pytest.mark.parametrize("cmd", ["stats", "clear", "reconcile", "reset-stats"])
def test_missing_namespace(
    backend: Backend, prefix: str, r: Any, capsys: pytest.CaptureFixture[str], cmd: str
) -> None:
    args = [cmd, "--url", backend.url, "--prefix", prefix]
    assert main([*args, "--yes"] if cmd == "clear" else args) == 4
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert r.exists(f"{{{prefix}}}:meta") == 0  # looking did not create it


def test_unreachable_server() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    p = run_cli("stats", "--url", url)
    assert p.returncode == 3
    assert "cannot reach Redis" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.fixture(scope="module")
def auth_server() -> Iterator[ServerProc]:
    s = AuthServer("s3cret").start()
    yield s
    s.stop()


def test_wrong_or_missing_password(auth_server: ServerProc) -> None:
    port = auth_server.port
    for url in (f"redis://127.0.0.1:{port}/0", f"redis://:wrong@127.0.0.1:{port}/0"):
        p = run_cli("stats", "--url", url)
        assert p.returncode == 3, p.stderr
        assert "password" in p.stderr or "credentials" in p.stderr
        assert "Traceback" not in p.stderr
        assert "wrong@" not in p.stderr  # the password is never printed
    p = run_cli("stats", "--url", f"redis://:s3cret@127.0.0.1:{port}/0", "--prefix", "nope")
    assert p.returncode == 4  # got in; the namespace does not exist
    assert "s3cret" not in p.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["stats", "--watch", "abc"],
        ["stats", "--watch", "-1"],
        ["stats", "--prefix", "a{b"],
        ["stats", "--url", "http://x"],
        ["metrics", "--port", "70000"],
    ],
)
def test_bad_arguments(
    args: list[str], backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--url" not in args and args and args[0] in ("stats", "metrics"):
        args = [*args, "--url", backend.url]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


# -- hostile data and hostile input --------------------------------------------------------

EVIL_MODELS = {
    "\x1b[2J\x1b[31mevil\x07": "\\x1b[2J\\x1b[31mevil\\x07",  # clear screen, red, bell
    "lone\ud800": "lone\\ud800",  # a lone surrogate (any str is a valid model name)
    "\u202egnp.exe": "\\u202egnp.exe",  # right-to-left override
    "cr\rlf\n": "cr\\x0dlf\\x0a",
    "模型-ok": "模型-ok",  # printable non-ASCII stays as it is
}


@pytest.fixture
def evil(redis_proc: ServerProc, prefix: str) -> Iterator[RedisExactCache]:
    c = RedisExactCache(url=redis_proc.url, key_prefix=prefix)
    for i, model in enumerate(EVIL_MODELS):
        c.put(*_fields(i, model), _resp(i))
        assert c.get(*_fields(i, model)) is not None
    yield c
    c.close()


def _no_control(text: str) -> None:
    bad = [ch for ch in text if not (ch.isprintable() or ch == "\n")]
    assert not bad, f"raw control/unprintable characters reached the terminal: {bad!r}"


def test_model_names_are_escaped_in_the_table(
    redis_proc: ServerProc, prefix: str, evil: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", redis_proc.url, "--prefix", prefix]) == 0
    out, err = capsys.readouterr()
    _no_control(out + err)
    for escaped in EVIL_MODELS.values():
        assert escaped in out
    assert "Traceback" not in err


def test_model_names_are_escaped_in_watch(
    redis_proc: ServerProc, prefix: str, evil: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["stats", "--url", redis_proc.url, "--prefix", prefix, "--watch", "0.01"]
    assert main([*args, "--count", "2"]) == 0
    out, _ = capsys.readouterr()
    _no_control(out)
    assert out.count("\\x1b[2J\\x1b[31mevil\\x07") == 2


def test_model_names_round_trip_in_json(
    redis_proc: ServerProc, prefix: str, evil: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--url", redis_proc.url, "--prefix", prefix, "--json"]) == 0
    out, _ = capsys.readouterr()
    assert out.isascii()  # JSON escapes: nothing raw on the terminal either
    data = json.loads(out)
    assert set(data["by_model"]) == set(EVIL_MODELS)  # the exact names, lone surrogate too
    assert data["hits"] == len(EVIL_MODELS)


def test_subprocess_table_on_an_ascii_terminal(
    redis_proc: ServerProc, prefix: str, evil: RedisExactCache
) -> None:
    p = run_cli(
        "stats", "--url", redis_proc.url, "--prefix", prefix, env={"PYTHONIOENCODING": "ascii"}
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "\\x1b[2J" in p.stdout and "lone\\ud800" in p.stdout
    assert "\\u6a21\\u578b-ok" in p.stdout  # what an ASCII terminal cannot show is escaped


def test_bad_counters_in_table_and_json(
    redis_proc: ServerProc, prefix: str, evil: RedisExactCache, capsys: pytest.CaptureFixture[str]
) -> None:
    with redis_proc.client() as r:
        r.hset(f"{{{prefix}:0}}:s", mapping={"hits": "abc", "puts": "1.5", "mh:\x1b]0;x\x07": "z"})
    assert main(["stats", "--url", redis_proc.url, "--prefix", prefix]) == 0
    out, err = capsys.readouterr()
    _no_control(out)
    assert "bad counters" in out and "hits='abc'" in out
    assert "Traceback" not in err
    assert main(["stats", "--url", redis_proc.url, "--prefix", prefix, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["bad_counters"]) == 3
    # the garbage `hits` field is skipped; the hits live in the per-model savings records
    assert data["hits"] == len(EVIL_MODELS) and data["tokens_saved"] == 10 * len(EVIL_MODELS)


@pytest.fixture
def huge_layout(redis_proc: ServerProc, prefix: str) -> Iterator[str]:
    with redis_proc.client() as r:
        r.set(f"{{{prefix}}}:meta", "fleetcache-1;shards=99999")
    yield prefix


def _hostile_cases(redis_proc: ServerProc, prefix: str) -> list[tuple[list[str], int, str]]:
    url = redis_proc.url
    return [
        (["stats", "--url", url, "--prefix", prefix], 1, "shards"),
        (["stats", "--url", url, "--prefix", prefix, "--json"], 1, "shards"),
        (["stats", "--url", "redis://127.0.0.1:99999/0"], 2, "Port out of range"),
        (["stats", "--url", "redis://127.0.0.1:abc/0"], 2, "invalid Redis URL"),
        (["stats", "--url", f"redis+cluster://127.0.0.1:{redis_proc.port}"], 3, "Cluster"),
        (["stats", "--url", url, "--watch", "inf"], 2, "--watch"),
        (["stats", "--url", url, "--watch", "1e10"], 2, "--watch"),
        (["stats", "--url", url, "--watch", "nan"], 2, "--watch"),
        (["stats", "--url", url, "--count", "-1", "--watch", "1"], 2, "--count"),
        (["stats", "--url", url, "--count", "0"], 2, "--count"),
        (["stats", "--url", "redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/m"], 3, "No master"),
    ]


def test_hostile_input_is_one_line_and_an_exit_code(
    redis_proc: ServerProc, huge_layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, code, words in _hostile_cases(redis_proc, huge_layout):
        got = main(args)
        _, err = capsys.readouterr()
        assert got == code, (args, err)
        assert "Traceback" not in err, args
        assert err.count("\n") == 1 and err.startswith("fleetcache"), (args, err)
        assert words in err, (args, err)
        assert "pw@" not in err  # the password is never printed


def test_hostile_input_through_a_subprocess(redis_proc: ServerProc, huge_layout: str) -> None:
    for args in (
        ["stats", "--url", redis_proc.url, "--prefix", huge_layout],
        ["stats", "--url", redis_proc.url, "--watch", "inf"],
    ):
        p = run_cli(*args)
        assert p.returncode in (1, 2), p.stderr
        assert "Traceback" not in p.stderr
        assert p.stderr.count("\n") == 1, p.stderr
