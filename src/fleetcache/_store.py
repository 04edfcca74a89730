"""The only code that talks to Redis: runs the core's instructions (``Call``/``Batch``) with
``EVALSHA``, reloading a script by itself on ``NOSCRIPT`` (after ``SCRIPT FLUSH``, a restart
or a failover). ``Store`` (sync) and ``AsyncStore`` (asyncio) mirror each other line for line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.cluster import RedisCluster
from redis.exceptions import NoPermissionError, NoScriptError, RedisError, ResponseError

from ._core import Batch, Call, Compute, Instruction, Sleep, StepOp
from .errors import FleetCacheError, UnsupportedServerError

T = TypeVar("T")

#: How many times one call reloads its script on NOSCRIPT before giving up: a SCRIPT FLUSH
#: can land between our SCRIPT LOAD and the EVALSHA that follows it.
RELOADS = 3


def _evalsha_args(c: Call) -> tuple[Any, ...]:
    return (c.script.sha, len(c.keys), *c.keys, *c.args)


def _check_script_error(exc: ResponseError) -> None:
    msg = str(exc)
    if "unknown command" in msg.lower() and "eval" in msg.lower():
        raise UnsupportedServerError(
            "this server has no Lua scripting (EVALSHA is an unknown command): fleetcache "
            "needs Redis >= 6.2 or Valkey >= 7.2 with scripting enabled"
        ) from exc
    if (
        isinstance(exc, NoPermissionError)
        or "can't run this command" in msg
        or ("ACL failure in script" in msg)
    ):
        raise UnsupportedServerError(
            f"the Redis user may not run a command fleetcache needs ({msg}); grant the ACL "
            "list in docs/operations.md (+evalsha +script|load and the commands the scripts "
            "call, on the namespace's keys)"
        ) from exc
    if "PXAT" in msg or "syntax error" in msg.lower():
        raise UnsupportedServerError(
            f"the server rejected a fleetcache script ({msg}); Redis >= 6.2 is required"
        ) from exc


class ClientFault(RedisError):
    """The redis-py client itself failed with a non-Redis exception (seen: an
    ``AttributeError`` from a cold async ``RedisCluster`` under a burst). Treated as a Redis
    fault, so the error policy applies instead of the exception reaching the LLM call."""


def _as_fault(exc: Exception) -> Exception:
    """Exceptions from the client during I/O: Redis faults and fleetcache's own setup errors
    pass as they are; anything else the client library raised becomes a ``ClientFault``."""
    if isinstance(exc, (RedisError, OSError, FleetCacheError)):
        return exc
    fault = ClientFault(f"redis client failed: {exc!r}")
    fault.__cause__ = exc
    return fault


def _failed(results: Sequence[Any]) -> list[int]:
    return [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]


def _first_error(results: Sequence[Any]) -> None:
    for r in results:
        if isinstance(r, BaseException):
            if isinstance(r, ResponseError):
                _check_script_error(r)
            raise r


class Store:
    """Runs instructions on a sync ``redis.Redis`` (or ``RedisCluster``) client."""

    __slots__ = ("_cluster", "client")

    def __init__(self, client: Any) -> None:
        self.client = client
        self._cluster = isinstance(client, RedisCluster)

    def call(self, c: Call) -> Any:
        try:
            for attempt in range(RELOADS + 1):
                try:
                    return self.client.evalsha(*_evalsha_args(c))
                except NoScriptError:
                    if attempt == RELOADS:
                        raise
                    self.client.script_load(c.script.source)
        except ResponseError as exc:  # also from the reload (ACL may deny SCRIPT LOAD)
            _check_script_error(exc)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def batch(self, b: Batch) -> list[Any]:
        results = self._pipeline(b.calls)
        for _ in range(RELOADS):
            retry = _failed(results)
            if not retry:
                break
            try:
                for i in {b.calls[i].script.name: i for i in retry}.values():
                    self.client.script_load(b.calls[i].script.source)
            except ResponseError as exc:
                _check_script_error(exc)
                raise
            again = self._pipeline([b.calls[i] for i in retry])
            for i, r in zip(retry, again, strict=True):
                results[i] = r
        _first_error(results)
        return results

    def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [self.client.evalsha(*_evalsha_args(calls[0]))]
            except ResponseError as exc:
                return [exc]
        # execute_command, not pipe.evalsha: redis-py's ClusterPipeline blocks the evalsha
        # method, but routes an EVALSHA command by its keys and sends one write per node.
        pipe = self.client.pipeline(transaction=False)
        if self._cluster:
            # the sync ClusterPipeline asks a server COMMAND GETKEYS for every EVALSHA it
            # routes (one extra round trip per shard); naming the node skips that. A stale
            # slot map is still fine: MOVED/ASK answers are retried by redis-py.
            node_of = self.client.get_node_from_key
            for c in calls:
                pipe.execute_command("EVALSHA", *_evalsha_args(c), target_nodes=node_of(c.keys[0]))
        else:
            for c in calls:
                pipe.execute_command("EVALSHA", *_evalsha_args(c))
        return list(pipe.execute(raise_on_error=False))

    def drive(
        self,
        op: StepOp[T],
        first: Instruction | None = None,
        compute: Callable[[], Any] | None = None,
    ) -> T:
        """Run an operation to its end; a Redis error is thrown into it (it may handle it).

        ``Sleep`` steps sleep (``time.sleep``); ``Compute`` steps call ``compute()`` and send
        its result in, or throw its exception in (the op re-raises it to the caller).
        """
        try:
            ins = next(op) if first is None else first
            while True:
                if isinstance(ins, Sleep):
                    time.sleep(ins.seconds)
                    ins = op.send(None)
                    continue
                if isinstance(ins, Compute):
                    if compute is None:
                        raise TypeError("this operation needs a compute callable")
                    try:
                        value = compute()
                    except BaseException as exc:
                        ins = op.throw(exc)
                    else:
                        ins = op.send(value)
                    continue
                try:
                    result = self.call(ins) if isinstance(ins, Call) else self.batch(ins)
                except Exception as exc:
                    ins = op.throw(_as_fault(exc))
                else:
                    ins = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()


class AsyncStore:
    """Runs instructions on a ``redis.asyncio.Redis`` (or async ``RedisCluster``) client."""

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, c: Call) -> Any:
        try:
            for attempt in range(RELOADS + 1):
                try:
                    return await self.client.evalsha(*_evalsha_args(c))
                except NoScriptError:
                    if attempt == RELOADS:
                        raise
                    await self.client.script_load(c.script.source)
        except ResponseError as exc:  # also from the reload (ACL may deny SCRIPT LOAD)
            _check_script_error(exc)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def batch(self, b: Batch) -> list[Any]:
        results = await self._pipeline(b.calls)
        for _ in range(RELOADS):
            retry = _failed(results)
            if not retry:
                break
            try:
                for i in {b.calls[i].script.name: i for i in retry}.values():
                    await self.client.script_load(b.calls[i].script.source)
            except ResponseError as exc:
                _check_script_error(exc)
                raise
            again = await self._pipeline([b.calls[i] for i in retry])
            for i, r in zip(retry, again, strict=True):
                results[i] = r
        _first_error(results)
        return results

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [await self.client.evalsha(*_evalsha_args(calls[0]))]
            except ResponseError as exc:
                return [exc]
        # execute_command, not pipe.evalsha: redis-py's ClusterPipeline blocks the evalsha
        # method, but routes an EVALSHA command by its keys and sends one write per node.
        pipe = self.client.pipeline(transaction=False)
        for c in calls:
            pipe.execute_command("EVALSHA", *_evalsha_args(c))
        return list(await pipe.execute(raise_on_error=False))

    async def drive(
        self,
        op: StepOp[T],
        first: Instruction | None = None,
        compute: Callable[[], Awaitable[Any]] | None = None,
    ) -> T:
        """Run an operation to its end; a Redis error is thrown into it (it may handle it).

        ``Sleep`` steps sleep (``asyncio.sleep``); ``Compute`` steps await ``compute()`` and
        send its result in, or throw its exception in (the op re-raises it to the caller).
        """
        try:
            ins = next(op) if first is None else first
            while True:
                if isinstance(ins, Sleep):
                    await asyncio.sleep(ins.seconds)
                    ins = op.send(None)
                    continue
                if isinstance(ins, Compute):
                    if compute is None:
                        raise TypeError("this operation needs a compute callable")
                    try:
                        value = await compute()
                    except BaseException as exc:
                        ins = op.throw(exc)
                    else:
                        ins = op.send(value)
                    continue
                try:
                    result = await (self.call(ins) if isinstance(ins, Call) else self.batch(ins))
                except Exception as exc:
                    ins = op.throw(_as_fault(exc))
                else:
                    ins = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()
