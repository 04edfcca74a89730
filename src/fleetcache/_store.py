# Generated from _astore.py by scripts/unasync.py: do not edit, edit _astore.py.
"""The only code that talks to Redis: runs the core's instructions (``Call``/``Batch``/
``Sleep``/``Compute``) with ``EVALSHA``, reloading a script by itself on ``NOSCRIPT`` (after
``SCRIPT FLUSH``, a restart or a failover).

The asyncio store is the source; the sync one (``_store.py``) is generated from it by
``scripts/unasync.py``: edit the asyncio store, then run the script.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
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


def _stopped(stop: threading.Event, seconds: float) -> bool:
    """Wait until ``stop`` is set, at most ``seconds`` (float s); True if it was set."""
    return stop.wait(seconds)


class Store:
    """Runs instructions on a redis-py client of its flavour (``Redis`` or ``RedisCluster``,
    from ``redis.asyncio`` for the asyncio store)."""

    __slots__ = ("_cluster", "client")

    def __init__(self, client: Any) -> None:
        self.client = client
        self._cluster = is_cluster(client)

    def call(self, c: Call) -> Any:
        """Run one script call; reload the script on ``NOSCRIPT`` (up to ``RELOADS`` times)."""
        try:
            for attempt in range(RELOADS + 1):
                try:
                    return self.client.evalsha(*evalsha_args(c))
                except NoScriptError:
                    if attempt == RELOADS:
                        raise
                    self.client.script_load(c.script.source)
        except ResponseError as exc:  # also from the reload (ACL may deny SCRIPT LOAD)
            check_script_error(exc)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def batch(self, b: Batch) -> list[Any]:
        """Run several script calls in one round trip per node; reload what ``NOSCRIPT``."""
        results = self._pipeline(b.calls)
        for _ in range(RELOADS):
            retry = noscript_positions(results)
            if not retry:
                break
            try:
                for i in {b.calls[i].script.name: i for i in retry}.values():
                    self.client.script_load(b.calls[i].script.source)
            except ResponseError as exc:
                check_script_error(exc)
                raise
            again = self._pipeline([b.calls[i] for i in retry])
            for i, r in zip(retry, again, strict=True):
                results[i] = r
        raise_first_error(results)
        return results

    def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [self.client.evalsha(*evalsha_args(calls[0]))]
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
        return list(pipe.execute(raise_on_error=False))

    def _renew(self, renew: Call, every: float, stop: threading.Event) -> None:
        """Run ``renew`` every ``every`` seconds until ``stop`` is set, the lease is lost
        (a reply other than 1) or Redis fails (the lease then simply expires)."""
        while not _stopped(stop, every):
            try:
                if self.call(renew) != 1:
                    return
            except Exception:  # any client failure ends the renewals
                return

    def _compute(self, compute: Callable[[], Any], step: Compute) -> Any:
        """``compute()``; with ``step.renew``, renewals run alongside it (a task in
        asyncio, a thread in sync code) and stop when it returns or raises."""
        if step.renew is None:
            return compute()
        stop = threading.Event()
        renewing = threading.Thread(
            target=self._renew, args=(step.renew, step.every, stop), daemon=True
        )
        renewing.start()
        try:
            return compute()
        finally:
            stop.set()
            renewing.join()

    def drive(
        self,
        op: StepOp[T],
        first: Instruction | None = None,
        compute: Callable[[], Any] | None = None,
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
                        result = self.call(ins)
                    except Exception as exc:
                        ins = op.throw(as_fault(exc))
                    except BaseException as exc:  # cancelled: the op may give a lease up
                        ins = op.throw(exc)
                    else:
                        ins = op.send(result)
                    continue
                if isinstance(ins, Sleep):
                    time.sleep(ins.seconds)
                    ins = op.send(None)
                    continue
                if isinstance(ins, Compute):
                    if compute is None:
                        raise TypeError("this operation needs a compute callable")
                    try:
                        value = self._compute(compute, ins)
                    except BaseException as exc:
                        ins = op.throw(exc)
                    else:
                        ins = op.send(value)
                    continue
                try:
                    result = self.call(ins) if isinstance(ins, Call) else self.batch(ins)
                except Exception as exc:
                    ins = op.throw(as_fault(exc))
                else:
                    ins = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            op.close()
