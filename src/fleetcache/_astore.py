"""The only code that talks to Redis: runs the core's instructions (``Call``/``Batch``/
``Sleep``/``Compute``) with ``EVALSHA``, reloading a script by itself on ``NOSCRIPT`` (after
``SCRIPT FLUSH``, a restart or a failover).

The asyncio store is the source; the sync one (``_store.py``) is generated from it by
``scripts/unasync.py``: edit the asyncio store, then run the script.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, ResponseError

from ._store_faults import (
    RELOADS,
    as_fault,
    check_script_error,
    evalsha_args,
    is_cluster,
    noscript_positions,
    raise_first_error,
)
from .core.instructions import Batch, Call, Compute, Instruction, Sleep, StepOp

T = TypeVar("T")


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait until ``stop`` is set, at most ``seconds`` (float s); True if it was set."""
    try:  # async-only
        await asyncio.wait_for(stop.wait(), seconds)  # async-only
    except asyncio.TimeoutError:  # async-only
        return False  # async-only
    return True  # async-only
    # sync-only: return stop.wait(seconds)


class AsyncStore:
    """Runs instructions on a redis-py client of its flavour (``Redis`` or ``RedisCluster``,
    from ``redis.asyncio`` for the asyncio store)."""

    __slots__ = ("_cluster", "client")

    def __init__(self, client: Any) -> None:
        self.client = client
        self._cluster = is_cluster(client)

    async def call(self, c: Call) -> Any:
        """Run one script call; reload the script on ``NOSCRIPT`` (up to ``RELOADS`` times)."""
        try:
            for attempt in range(RELOADS + 1):
                try:
                    return await self.client.evalsha(*evalsha_args(c))
                except NoScriptError:
                    if attempt == RELOADS:
                        raise
                    await self.client.script_load(c.script.source)
        except ResponseError as exc:  # also from the reload (ACL may deny SCRIPT LOAD)
            check_script_error(exc)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def batch(self, b: Batch) -> list[Any]:
        """Run several script calls in one round trip per node; reload what ``NOSCRIPT``."""
        results = await self._pipeline(b.calls)
        for _ in range(RELOADS):
            retry = noscript_positions(results)
            if not retry:
                break
            try:
                for i in {b.calls[i].script.name: i for i in retry}.values():
                    await self.client.script_load(b.calls[i].script.source)
            except ResponseError as exc:
                check_script_error(exc)
                raise
            again = await self._pipeline([b.calls[i] for i in retry])
            for i, r in zip(retry, again, strict=True):
                results[i] = r
        raise_first_error(results)
        return results

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [await self.client.evalsha(*evalsha_args(calls[0]))]
            except ResponseError as exc:
                return [exc]
        # execute_command, not pipe.evalsha: redis-py's ClusterPipeline blocks the evalsha
        # method, but routes an EVALSHA command by its keys and sends one write per node.
        pipe = self.client.pipeline(transaction=False)
        if self._cluster:
            # naming the node skips the sync ClusterPipeline's COMMAND GETKEYS round trip per
            # EVALSHA; a stale slot map is still fine (MOVED/ASK are retried by redis-py).
            node_of = self.client.get_node_from_key
            for c in calls:
                pipe.execute_command("EVALSHA", *evalsha_args(c), target_nodes=node_of(c.keys[0]))
        else:
            for c in calls:
                pipe.execute_command("EVALSHA", *evalsha_args(c))
        return list(await pipe.execute(raise_on_error=False))

    async def _renew(self, renew: Call, every: float, stop: asyncio.Event) -> None:
        """Run ``renew`` every ``every`` seconds until ``stop`` is set, the lease is lost
        (a reply other than 1) or Redis fails (the lease then simply expires)."""
        while not await _stopped(stop, every):
            try:
                if await self.call(renew) != 1:
                    return
            except Exception:  # any client failure ends the renewals
                return

    async def _compute(self, compute: Callable[[], Awaitable[Any]], step: Compute) -> Any:
        """``compute()``; with ``step.renew``, renewals run alongside it (a task in
        asyncio, a thread in sync code) and stop when it returns or raises."""
        if step.renew is None:
            return await compute()
        stop = asyncio.Event()
        renewing = asyncio.ensure_future(self._renew(step.renew, step.every, stop))  # async-only
        # sync-only: renewing = threading.Thread(
        # sync-only:     target=self._renew, args=(step.renew, step.every, stop), daemon=True
        # sync-only: )
        # sync-only: renewing.start()
        try:
            return await compute()
        finally:
            stop.set()
            await renewing  # async-only
            # sync-only: renewing.join()

    async def drive(
        self,
        op: StepOp[T],
        first: Instruction | None = None,
        compute: Callable[[], Awaitable[Any]] | None = None,
    ) -> T:
        """Run an operation to its end; a Redis error is thrown into it (it may handle it).

        ``Sleep`` steps sleep (without blocking other callers); ``Compute`` steps call
        ``compute()`` and send its result in, or throw its exception in (the op re-raises
        it to the caller).
        """
        try:
            ins = next(op) if first is None else first
            while True:
                if type(ins) is Call:  # the common step (every get and put) checked first
                    try:
                        result = await self.call(ins)
                    except Exception as exc:
                        ins = op.throw(as_fault(exc))
                    except BaseException as exc:  # cancelled: the op may give a lease up
                        ins = op.throw(exc)
                    else:
                        ins = op.send(result)
                    continue
                if isinstance(ins, Sleep):
                    await asyncio.sleep(ins.seconds)
                    ins = op.send(None)
                    continue
                if isinstance(ins, Compute):
                    if compute is None:
                        raise TypeError("this operation needs a compute callable")
                    try:
                        value = await self._compute(compute, ins)
                    except BaseException as exc:
                        ins = op.throw(exc)
                    else:
                        ins = op.send(value)
                    continue
                try:
                    result = await (self.call(ins) if isinstance(ins, Call) else self.batch(ins))
                except Exception as exc:
                    ins = op.throw(as_fault(exc))
                else:
                    ins = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()
