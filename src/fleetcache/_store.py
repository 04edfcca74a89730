"""The only code that talks to Redis: runs the core's instructions (``Call``/``Batch``) with
``EVALSHA``, reloading a script by itself on ``NOSCRIPT`` (after ``SCRIPT FLUSH``, a restart
or a failover). ``Store`` (sync) and ``AsyncStore`` (asyncio) mirror each other line for line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, ResponseError

from ._core import Batch, Call, Instruction, Op
from .errors import UnsupportedServerError

T = TypeVar("T")


def _evalsha_args(c: Call) -> tuple[Any, ...]:
    return (c.script.sha, len(c.keys), *c.keys, *c.args)


def _check_script_error(exc: ResponseError) -> None:
    msg = str(exc)
    if "unknown command" in msg.lower() and "eval" in msg.lower():
        raise UnsupportedServerError(
            "this server has no Lua scripting (EVALSHA is an unknown command): fleetcache "
            "needs Redis >= 6.2 or Valkey >= 7.2 with scripting enabled"
        ) from exc
    if "PXAT" in msg or "syntax error" in msg.lower():
        raise UnsupportedServerError(
            f"the server rejected a fleetcache script ({msg}); Redis >= 6.2 is required"
        ) from exc


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

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, c: Call) -> Any:
        try:
            return self.client.evalsha(*_evalsha_args(c))
        except NoScriptError:
            self.client.script_load(c.script.source)
            return self.client.evalsha(*_evalsha_args(c))
        except ResponseError as exc:
            _check_script_error(exc)
            raise

    def batch(self, b: Batch) -> list[Any]:
        results = self._pipeline(b.calls)
        retry = _failed(results)
        if retry:
            for i in {b.calls[i].script.name: i for i in retry}.values():
                self.client.script_load(b.calls[i].script.source)
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
        pipe = self.client.pipeline(transaction=False)
        for c in calls:
            pipe.evalsha(*_evalsha_args(c))
        return list(pipe.execute(raise_on_error=False))

    def execute(self, ins: Instruction) -> Any:
        if isinstance(ins, Call):
            return self.call(ins)
        return self.batch(ins)

    def drive(self, op: Op[T], first: Instruction | None = None) -> T:
        """Run an operation to its end; a Redis error is thrown into it (it may handle it)."""
        try:
            ins = next(op) if first is None else first
            while True:
                try:
                    result = self.execute(ins)
                except Exception as exc:
                    ins = op.throw(exc)
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
            return await self.client.evalsha(*_evalsha_args(c))
        except NoScriptError:
            await self.client.script_load(c.script.source)
            return await self.client.evalsha(*_evalsha_args(c))
        except ResponseError as exc:
            _check_script_error(exc)
            raise

    async def batch(self, b: Batch) -> list[Any]:
        results = await self._pipeline(b.calls)
        retry = _failed(results)
        if retry:
            for i in {b.calls[i].script.name: i for i in retry}.values():
                await self.client.script_load(b.calls[i].script.source)
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
        pipe = self.client.pipeline(transaction=False)
        for c in calls:
            pipe.evalsha(*_evalsha_args(c))
        return list(await pipe.execute(raise_on_error=False))

    async def execute(self, ins: Instruction) -> Any:
        if isinstance(ins, Call):
            return await self.call(ins)
        return await self.batch(ins)

    async def drive(self, op: Op[T], first: Instruction | None = None) -> T:
        """Run an operation to its end; a Redis error is thrown into it (it may handle it)."""
        try:
            ins = next(op) if first is None else first
            while True:
                try:
                    result = await self.execute(ins)
                except Exception as exc:
                    ins = op.throw(exc)
                else:
                    ins = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()
