"""No fleetcache command prints any part of a credential in ``--url``: a TLS key
passphrase (``ssl_password=``), any other secret query parameter, and a password pasted
without percent-encoding (holding ``#``, ``?``, ``/``, ``@`` or ``:``). Run against a real
server, through the real ``fleetcache`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fleetcache import AsyncRedisExactCache, RedisExactCache

from ..support.servers import AuthServer, ServerProc


@pytest.fixture(scope="module")
def auth_server() -> Iterator[ServerProc]:
    """A server whose password is not the one the tests paste into ``--url``."""
    s = AuthServer("the-right-one").start()
    yield s
    s.stop()


SECRET = "Zq{c}Xw9{c}Kp7Vt"
#: every subcommand that takes --url, with the arguments that make it run without asking
COMMANDS = [
    ["stats"],
    ["stats", "--json"],
    ["reconcile"],
    ["clear", "--yes"],
    ["reset-stats"],
    ["metrics", "--port", "0"],
    ["demo", "--workers", "1", "--duration", "1"],
]


def _pieces(secret: str) -> list[str]:
    return [secret[i : i + 4] for i in range(len(secret) - 3)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLEETCACHE_DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "fleetcache", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def _assert_hidden(p: subprocess.CompletedProcess[str], secret: str) -> None:
    both = p.stdout + p.stderr
    assert "Traceback" not in both, both
    for piece in _pieces(secret):
        assert piece not in both, (piece, both)


@pytest.mark.parametrize("char", ["#", "?", "/", "@", ":"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c))
def test_unencoded_password_is_never_printed(
    auth_server: ServerProc, command: list[str], char: str
) -> None:
    """``#``, ``?``, ``/`` split the URL: refused with exit 2 and a message that names the
    fix; ``@`` and ``:`` parse (the server then refuses the password: exit 3)."""
    secret = SECRET.format(c=char)
    url = f"redis://:{secret}@127.0.0.1:{auth_server.port}/0"
    p = _run([command[0], "--url", url, *command[1:]])
    _assert_hidden(p, secret)
    if char in "#?/":
        assert p.returncode == 2, p.stderr
        assert "percent-encoded" in p.stderr
    else:
        assert p.returncode == 3, p.stderr
    assert "fleetcache: error:" in p.stderr


@pytest.mark.parametrize(
    "query",
    [
        "ssl_password={s}",
        "ssl_password={s}&ssl_check_hostname=false",
        "ssl_password={s}&password={s}",
    ],
)
@pytest.mark.parametrize("command", [["stats"], ["reconcile"], ["clear", "--yes"]], ids=str)
def test_secret_query_parameters_are_masked(
    redis_proc: ServerProc, command: list[str], query: str
) -> None:
    """A TLS URL against a plain-text server fails the handshake: the error line shows the
    URL with every secret parameter masked and the other parameters kept."""
    secret = "Pp7-tls-Passphrase"
    url = f"rediss://127.0.0.1:{redis_proc.port}/0?ssl_cert_reqs=none&" + query.format(s=secret)
    p = _run([command[0], "--url", url, *command[1:]])
    _assert_hidden(p, secret)
    assert p.returncode == 3, p.stderr
    assert "=***" in p.stderr and "ssl_cert_reqs=none" in p.stderr


@pytest.mark.parametrize("char", ["#", "?", "/"])
@pytest.mark.parametrize("cls", [RedisExactCache, AsyncRedisExactCache])
def test_library_constructor_error_shows_no_password(
    redis_proc: ServerProc, char: str, cls: type[RedisExactCache] | type[AsyncRedisExactCache]
) -> None:
    secret = SECRET.format(c=char)
    url = f"redis://:{secret}@127.0.0.1:{redis_proc.port}/0"
    with pytest.raises(ValueError) as info:
        cls(url=url)
    text = str(info.value) + repr(info.value.__cause__) + repr(info.value.__context__)
    assert "percent-encoded" in text
    for piece in _pieces(secret):
        assert piece not in text
