"""Batch calls in the pure core (``get_many``/``put_many``): no I/O here either.

``get_many``/``put_many`` group requests by shard and pack each shard's requests into script
calls of at most ``BATCH_CHUNK`` entries (so a call names at most ``BATCH_CHUNK + 2`` keys),
then yield ONE ``Batch`` of all those calls: one pipelined round trip per node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from .._lua import script
from .envelope import MAGIC, CorruptEntry
from .instructions import Batch, Call, Op
from .keys import RequestFields, model_arg
from .ops import PRUNE_PER_PUT, UNSTORABLE, Core
from .signing import ForgedEntry

#: Entries one get_many/put_many script call handles at most (plus 2 fixed keys <= 1000).
BATCH_CHUNK = 500

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


#: One entry of a bulk call: (shard, digest, the script arguments it adds after the head).
Packed = tuple[int, str, tuple[str | bytes, ...]]


def _pack(
    core: Core, name: str, entries: Sequence[Packed], head: Callable[[int], tuple[Any, ...]]
) -> tuple[list[list[int]], list[Call]]:
    """One call of script ``name`` per chunk of <= BATCH_CHUNK entries of one shard.

    Positions are grouped by shard (shards in order, entries in request order within one),
    each group cut into chunks. A chunk's call has the keys (index, stats, one entry key per
    entry) and the arguments ``head(shard)`` followed by each entry's own. Returns the
    chunks (lists of positions in ``entries``) and their calls, in the same order.
    """
    groups: dict[int, list[int]] = {}
    for i, (shard, _digest, _args) in enumerate(entries):
        groups.setdefault(shard, []).append(i)
    k = core.keys
    s = script(name)
    parts: list[list[int]] = []
    calls: list[Call] = []
    for shard, idxs in sorted(groups.items()):
        for c in range(0, len(idxs), BATCH_CHUNK):
            part = idxs[c : c + BATCH_CHUNK]
            keys = (k.index(shard), k.stats(shard), *(k.entry(shard, entries[i][1]) for i in part))
            args = list(head(shard))
            for i in part:
                args += entries[i][2]
            parts.append(part)
            calls.append(Call(s, keys, tuple(args)))
    return parts, calls


def op_get_many(core: Core, plan: list[Planned]) -> Op[list[BaseModel | None]]:
    """Responses (or ``None``) in request order; one ``Batch`` of <= BATCH_CHUNK-entry calls.

    Entries whose MAC does not verify (signed caches) or whose body fails to decode are
    dropped and recounted as forged or corrupt misses in one more ``Batch``, as ``get`` does
    one by one.
    """
    out: list[BaseModel | None] = [None] * len(plan)
    if not plan:
        return out
    entries = [(shard, digest, (digest, model_arg(req[2]))) for req, digest, shard in plan]
    parts, calls = _pack(core, "get_many", entries, lambda _shard: (MAGIC,))
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
    and the TTL in ms. An item over ``max_entry_bytes`` or that cannot be serialised goes to
    ``refuse`` (which raises, or logs and the item is skipped). Nothing is sent before every
    item has passed."""
    ttl_ms = core.entry_ttl(ttl_seconds)
    out: list[tuple[str, int, bytes]] = []
    for i, it in enumerate(_as_list(items, "items")):
        t = _as_tuple(it, 6, "item", i)
        req, digest, shard = core.request(t[:5])
        try:
            payload = core.encode(t[5], digest, req[2])
        except UNSTORABLE as exc:
            refuse(exc)
            continue
        out.append((digest, shard, payload))
    return out, ttl_ms


def op_put_many(core: Core, plan: list[tuple[str, int, bytes]], ttl_ms: int) -> Op[int]:
    """Store every planned item; returns how many were new entries."""
    if not plan:
        return 0
    entries = [(shard, digest, (digest, payload)) for digest, shard, payload in plan]
    _parts, calls = _pack(
        core, "put_many", entries, lambda shard: (ttl_ms, PRUNE_PER_PUT, core.caps[shard])
    )
    layout, *results = yield Batch((core.layout_call(True), *calls))
    core.check_layout_reply(layout)
    return sum(int(r) for r in results)
