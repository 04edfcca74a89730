"""URL-built clients retry only what provably was not sent (a failure to
connect), once; a timeout or a broken connection after the command may have left is never
re-sent (the script would count twice)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fleetcache._clients import AsyncConnectRetry, ConnectRetry, _client_kwargs


def _flaky(*errors: Exception) -> Any:
    calls: list[int] = []

    def do() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    do.calls = calls  # type: ignore[attr-defined]
    return do


def test_connect_failure_is_retried_once() -> None:
    failed: list[Exception] = []
    do = _flaky(RedisTimeoutError("Timeout connecting to server"))
    assert ConnectRetry().call_with_retry(do, failed.append) == "ok"
    assert len(do.calls) == 2 and len(failed) == 1
    do = _flaky(*[RedisConnectionError("Error 111 connecting to 127.0.0.1:1.")] * 2)
    with pytest.raises(RedisConnectionError):
        ConnectRetry().call_with_retry(do, failed.append)
    assert len(do.calls) == 2  # once, not more


@pytest.mark.parametrize(
    "error",
    [
        RedisTimeoutError("Timeout reading from 127.0.0.1:6390"),
        RedisConnectionError("Connection closed by server."),
        RedisConnectionError("Error while writing to socket. Connection reset by peer."),
    ],
)
def test_a_command_that_may_have_run_is_never_resent(error: Exception) -> None:
    failed: list[Any] = []
    do = _flaky(error)
    with pytest.raises(type(error)):
        ConnectRetry().call_with_retry(do, lambda e, n: failed.append(n), None, True)
    assert len(do.calls) == 1 and failed == [1]  # the failure handler ran (disconnects)


def test_async_twin() -> None:
    async def run() -> None:
        n = 0

        async def do() -> str:
            nonlocal n
            n += 1
            if n == 1:
                raise RedisTimeoutError("Timeout connecting to server")
            if n == 2:
                raise RedisTimeoutError("Timeout reading from x")
            return "ok"

        async def fail(error: Exception) -> None:
            return None

        async def ok() -> str:  # no asyncio.sleep: the unit conftest forbids sleeping
            return "ok"

        assert await AsyncConnectRetry().call_with_retry(ok, fail) == "ok"
        with pytest.raises(RedisTimeoutError, match="reading"):
            await AsyncConnectRetry().call_with_retry(do, fail)
        assert n == 2

    asyncio.run(run())


def test_url_clients_use_it() -> None:
    assert isinstance(_client_kwargs(0.25, 0.25)["retry"], ConnectRetry)
