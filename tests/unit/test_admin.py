"""``run_command``: how the operator tools (``fleetcache``, ``python -m fleetcache.demo``)
turn expected failures into one line on stderr and an exit code (no traceback)."""

from __future__ import annotations

import io

import pytest
import redis

from fleetcache import CacheUnavailableError, LayoutMismatchError
from fleetcache._admin import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdminError,
    redact,
    run_command,
)


def _unavailable_from(cause: BaseException) -> CacheUnavailableError:
    try:
        raise CacheUnavailableError("cache unavailable") from cause
    except CacheUnavailableError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (AdminError("bad --workers", EXIT_USAGE), EXIT_USAGE, "fleetcache: error: bad --workers"),
        (KeyboardInterrupt(), 130, "fleetcache: interrupted"),
        (
            _unavailable_from(redis.ConnectionError("refused")),
            EXIT_UNREACHABLE,
            "fleetcache: error: cache unavailable",
        ),
        (LayoutMismatchError("other layout"), EXIT_FAILED, "fleetcache: error: other layout"),
        (redis.ResponseError("WRONGTYPE"), EXIT_UNREACHABLE, "Redis failed: WRONGTYPE"),
    ],
)
def test_expected_failures_become_a_line_and_an_exit_code(
    exc: BaseException, code: int, line: str
) -> None:
    def command() -> int:
        raise exc

    err = io.StringIO()
    assert run_command(command, err) == code
    assert line in err.getvalue() and "Traceback" not in err.getvalue()


def test_a_command_that_works_returns_its_own_code() -> None:
    err = io.StringIO()
    assert run_command(lambda: 0, err) == 0 and err.getvalue() == ""


def test_an_unexpected_error_is_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def command() -> int:
        raise ZeroDivisionError("boom")

    monkeypatch.delenv("FLEETCACHE_DEBUG", raising=False)
    err = io.StringIO()
    assert run_command(command, err) == EXIT_FAILED
    assert (
        err.getvalue().count("\n") == 1 and "unexpected ZeroDivisionError: boom" in err.getvalue()
    )
    monkeypatch.setenv("FLEETCACHE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_command(command, io.StringIO())


def test_messages_are_escaped_onto_one_line() -> None:
    def command() -> int:
        raise AdminError("bad\nname \x1b[31m", EXIT_USAGE)

    err = io.StringIO()
    assert run_command(command, err) == EXIT_USAGE
    assert err.getvalue() == "fleetcache: error: bad\\x0aname \\x1b[31m\n"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6380/0", "redis://:***@h:6380/0"),
        ("redis://user:s3cret@h/0", "redis://user:***@h/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        (
            "rediss://h/0?ssl_password=pp&ssl_keyfile=/k.pem&api_key=k1&password=p2",
            "rediss://h/0?ssl_password=***&ssl_keyfile=/k.pem&api_key=***&password=***",
        ),
        ("redis://:pa/ss@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://u:pa#ss@h/0", "redis://u:***@h/0"),
        ("redis://:pa?ss@h/0", "redis://:***@h/0"),
        ("redis+sentinel://:pw@h1:1,h2:2/svc", "redis+sentinel://:***@h1:1,h2:2/svc"),
    ],
)
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown
