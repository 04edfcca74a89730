"""Batch calls and fleet-wide single-flight, in the pure core: no I/O here either.

``get_many``/``put_many`` group requests by shard and pack each shard's requests into script
calls of at most ``BATCH_CHUNK`` entries (so a call names at most ``BATCH_CHUNK + 2`` keys),
then yield ONE ``Batch`` of all those calls: one pipelined round trip per node.

``get_or_compute`` is a ``Flight``: its generator yields ``Call`` (Redis), ``Sleep`` (a
waiter's backoff) and ``Compute`` (the user's function) steps; the sync and async stores run
them (``time.sleep``/``asyncio.sleep``, ``compute()``/``await compute()``).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from ._codec import ACCEPT_PREFIX, CorruptEntry
from ._core import PRUNE_PER_PUT, Batch, Call, Compute, Core, Op, Sleep, StepOp, model_arg
from ._keys import RequestFields
from ._scripts import script
from ._signing import ForgedEntry
from .errors import EntryTooLargeError

#: Entries one get_many/put_many script call handles at most (plus 2 fixed keys <= 1000).
BATCH_CHUNK = 500
#: A waiter's first poll interval (s); it grows by ``POLL_GROWTH`` up to ``POLL_MAX``.
POLL_START = 0.002
#: Growth factor of a waiter's poll interval.
POLL_GROWTH = 1.5
#: Longest poll interval of a waiter (s): bounds the latency a waiter adds after the answer
#: lands, and the poll load (<= 1/POLL_MAX script calls a second per waiter).
POLL_MAX = 0.025

Planned = tuple[RequestFields, str, int]
Refuse = Callable[[Exception], None]


def _as_tuple(item: object, n: int, what: str, i: int) -> tuple[Any, ...]:
    if isinstance(item, (str, bytes)) or not isinstance(item, (tuple, list)):
        raise TypeError(f"{what} {i} must be a tuple of {n} fields, not {type(item).__name__}")
    if len(item) != n:
        raise ValueError(f"{what} {i} must have {n} fields, not {len(item)}")
    return tuple(item)


def _as_list(items: object, what: str) -> list[Any]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be an iterable of tuples, not {type(items).__name__}")
    return list(items)


def plan_get_many(core: Core, requests: object) -> list[Planned]:
    """Validate every request (5-tuples) up front and return (fields, digest, shard) each.

    ``TypeError``/``ValueError`` name the first bad request's position; nothing is sent.
    """
    out: list[Planned] = []
    for i, r in enumerate(_as_list(requests, "requests")):
        out.append(core.request(_as_tuple(r, 5, "request", i)))
    return out


def _chunks(plan: Sequence[Any], shard_of: Callable[[Any], int]) -> list[list[int]]:
    """Positions grouped by shard (in request order), each group cut into <= BATCH_CHUNK."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(plan):
        groups.setdefault(shard_of(p), []).append(i)
    parts: list[list[int]] = []
    for _shard, idxs in sorted(groups.items()):
        parts.extend(idxs[c : c + BATCH_CHUNK] for c in range(0, len(idxs), BATCH_CHUNK))
    return parts


def op_get_many(core: Core, plan: list[Planned]) -> Op[list[BaseModel | None]]:
    """Responses (or ``None``) in request order; one ``Batch`` of <= BATCH_CHUNK-entry calls.

    Entries whose MAC does not verify (signed caches) or whose body fails to decode are
    dropped and recounted as forged or corrupt misses in one more ``Batch``, as ``get`` does
    one by one.
    """
    out: list[BaseModel | None] = [None] * len(plan)
    if not plan:
        return out
    k = core.keys
    s = script("get_many")
    parts = _chunks(plan, lambda p: p[2])
    calls = []
    for part in parts:
        shard = plan[part[0]][2]
        keys = (k.index(shard), k.stats(shard), *(k.entry(shard, plan[i][1]) for i in part))
        args: list[str | bytes] = [ACCEPT_PREFIX]
        for i in part:
            args += (plan[i][1], model_arg(plan[i][0][2]))
        calls.append(Call(s, keys, tuple(args)))
    results = yield Batch(tuple(calls))
    drops = []
    for part, res in zip(parts, results, strict=True):
        for i, raw in zip(part, res, strict=True):
            if not raw:
                continue
            req, digest, shard = plan[i]
            try:
                out[i] = core.decode(raw, digest)
            except (ForgedEntry, CorruptEntry) as exc:
                drops.append(core.drop_bad_call(exc, req, digest, shard, raw))
    if drops:
        yield Batch(tuple(drops))
    return out


def plan_put_many(
    core: Core, items: object, ttl_seconds: object, refuse: Refuse
) -> tuple[list[tuple[str, int, bytes]], int]:
    """Validate and encode every item (6-tuples) up front: ``(digest, shard, payload)`` each,
    and the TTL in ms. An item over ``max_entry_bytes`` goes to ``refuse`` (which raises, or
    logs and the item is skipped). Nothing is sent before every item has passed."""
    ttl_ms = core.entry_ttl(ttl_seconds)
    out: list[tuple[str, int, bytes]] = []
    for i, it in enumerate(_as_list(items, "items")):
        t = _as_tuple(it, 6, "item", i)
        _req, digest, shard = core.request(t[:5])
        try:
            payload = core.encode(t[5], digest)
        except EntryTooLargeError as exc:
            refuse(exc)
            continue
        out.append((digest, shard, payload))
    return out, ttl_ms


def op_put_many(core: Core, plan: list[tuple[str, int, bytes]], ttl_ms: int) -> Op[int]:
    """Store every planned item; returns how many were new entries."""
    if not plan:
        return 0
    k = core.keys
    s = script("put_many")
    parts = _chunks(plan, lambda p: p[1])
    calls = []
    for part in parts:
        shard = plan[part[0]][1]
        keys = (k.index(shard), k.stats(shard), *(k.entry(shard, plan[i][0]) for i in part))
        args: list[str | bytes | int] = [ttl_ms, PRUNE_PER_PUT, core.caps[shard]]
        for i in part:
            args += (plan[i][0], plan[i][2])
        calls.append(Call(s, keys, tuple(args)))
    results = yield Batch(tuple(calls))
    return sum(int(r) for r in results)


def check_lease(lease_seconds: object, wait_timeout: object) -> tuple[int, float | None]:
    """``lease_seconds`` (float s, > 0, ms precision) in ms; ``wait_timeout`` (s >= 0 or None)."""
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
        raise TypeError("lease_seconds must be a number of seconds")
    lease = float(lease_seconds)
    if not math.isfinite(lease) or lease < 0.001:
        raise ValueError(f"lease_seconds must be finite and >= 0.001 s, not {lease_seconds!r}")
    if wait_timeout is None:
        return round(lease * 1000), None
    if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, (int, float)):
        raise TypeError("wait_timeout must be a number of seconds or None")
    wait = float(wait_timeout)
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(f"wait_timeout must be finite and >= 0 s, or None; not {wait_timeout!r}")
    return round(lease * 1000), wait


class Flight:
    """One ``get_or_compute`` call: the request, its lease token, and what happened.

    The facade reads ``computed``/``response``/``compute_error`` when Redis fails midway, to
    return the answer it already has (or to call ``compute`` itself when it has none).
    """

    __slots__ = (
        "coalesced",
        "compute_error",
        "computed",
        "core",
        "deadline_s",
        "digest",
        "lease_ms",
        "refuse",
        "req",
        "response",
        "shard",
        "token",
    )

    def __init__(
        self,
        core: Core,
        fields: tuple[Any, ...],
        lease_seconds: object,
        wait_timeout: object,
        refuse: Refuse,
    ) -> None:
        self.core = core
        self.req, self.digest, self.shard = core.request(fields)
        self.lease_ms, self.deadline_s = check_lease(lease_seconds, wait_timeout)
        self.refuse = refuse
        self.token = secrets.token_hex(16)
        self.computed = False
        self.coalesced = False
        self.response: Any = None
        self.compute_error: BaseException | None = None

    def _lease_call(self, first: bool) -> Call:
        k, sh, d = self.core.keys, self.shard, self.digest
        return Call(
            script("get_or_lease"),
            (k.entry(sh, d), k.index(sh), k.stats(sh), k.lease(sh, d)),
            (
                d,
                model_arg(self.req[2]),
                ACCEPT_PREFIX,
                self.token,
                self.lease_ms,
                "1" if first else "0",
            ),
        )

    def _release_call(self) -> Call:
        k = self.core.keys
        return Call(script("release_lease"), (k.lease(self.shard, self.digest),), (self.token,))

    def run(self) -> StepOp[Any]:
        """Hit -> the entry. Miss -> lease granted: compute and store; lease held by another:
        poll with backoff until the entry lands (coalesced), the lease ends (take it over), or
        ``wait_timeout`` passes (compute without a lease)."""
        sh, d = self.shard, self.digest
        start = time.monotonic()
        deadline = None if self.deadline_s is None else start + self.deadline_s
        delay = POLL_START
        first = True
        while True:
            res = yield self._lease_call(first)
            kind = int(res[0])
            if kind == 1:
                raw = res[1]
                try:
                    response = self.core.decode(raw, d)
                except (ForgedEntry, CorruptEntry) as exc:
                    yield self.core.drop_bad_call(exc, self.req, d, sh, raw, coalesced=not first)
                    first = False
                    continue
                self.coalesced = not first
                return response
            if kind == 2:
                return (yield from self._compute_and_store(leased=True))
            first = False
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return (yield from self._compute_and_store(leased=False))
            pause = delay
            pttl = int(res[1])
            if pttl > 0:  # wake up just after the lease ends, to take it over promptly
                pause = min(pause, pttl / 1000 + 0.001)
            if deadline is not None:
                pause = min(pause, max(deadline - now, 0.0))
            yield Sleep(pause)
            delay = min(delay * POLL_GROWTH, POLL_MAX)

    def _compute_and_store(self, *, leased: bool) -> StepOp[Any]:
        try:
            response = yield Compute()
        except BaseException as exc:
            self.compute_error = exc
            if leased:
                with contextlib.suppress(Exception):  # Redis fault: the lease expires anyway
                    yield self._release_call()
            raise
        self.computed = True
        self.response = response
        try:
            payload = self.core.encode(response, self.digest)
        except EntryTooLargeError as exc:
            if leased:
                yield self._release_call()
            self.refuse(exc)
            return response
        except Exception as exc:  # not a response model: give the lease up, raise to caller
            self.compute_error = exc
            if leased:
                yield self._release_call()
            raise
        k, sh, d = self.core.keys, self.shard, self.digest
        ttl_ms = self.core.ttl_ms
        if leased:
            yield Call(
                script("put_release"),
                (k.entry(sh, d), k.index(sh), k.stats(sh), k.lease(sh, d)),
                (d, payload, ttl_ms, PRUNE_PER_PUT, self.token, self.core.caps[sh]),
            )
        else:
            yield self.core.put_call(d, sh, payload, ttl_ms)
        return response
