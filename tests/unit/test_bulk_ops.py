"""``get_many``/``put_many`` in the pure core, run by the scripted driver (no Redis): requests
grouped by shard, at most 500 entries a script call, all calls in ONE ``Batch`` (one round
trip per node), results back in request order, corrupt bodies dropped in one more Batch."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from fleetcache.core.batch import (
    BATCH_CHUNK,
    op_get_many,
    op_put_many,
    plan_get_many,
    plan_put_many,
)
from fleetcache.core.envelope import MAGIC
from fleetcache.core.instructions import Batch, Call
from fleetcache.core.models import LLMResponse
from fleetcache.core.ops import Core
from fleetcache.errors import EntryTooLargeError, LayoutMismatchError

from ..support.core_data import (
    answer,
    contents,
    corrupt_envelopes,
    digest,
    envelope,
    layout_ok,
    make_core,
    meta_key,
    request,
)
from ..support.script_driver import ScriptedOp, fixed_args, item_args


class Strict(LLMResponse):
    """A stricter response model (a newer release mid-rollout): ``content`` required."""

    content: str = Field(min_length=30)


def _entries(call: Call) -> list[str]:
    """The entry keys of a get_many/put_many call (after its index and stats keys)."""
    return list(call.keys[2:])


def _shard(core: Core, fields: tuple[Any, ...]) -> int:
    return core.keys.shard_of(digest(fields))


def test_get_many_is_one_batch_grouped_by_shard_in_request_order() -> None:
    core = make_core(shards=4)
    reqs = [request(i) for i in range(30)]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    batch = op.expect_batch()
    assert all(c.script.name == "get_many" for c in batch.calls)
    shards = {_shard(core, r) for r in reqs}
    assert len(batch.calls) == len(shards) > 1  # one call per shard used
    by_key = {core.keys.entry(_shard(core, r), digest(r)): r for r in reqs}
    covered: list[str] = []
    for call in batch.calls:
        entries = _entries(call)
        shard = _shard(core, by_key[entries[0]])
        assert call.keys[:2] == (core.keys.index(shard), core.keys.stats(shard))
        assert {_shard(core, by_key[k]) for k in entries} == {shard}
        positions = [reqs.index(by_key[k]) for k in entries]
        assert positions == sorted(positions)  # request order within the shard
        # ARGV: the accepted magic (once per call), then (digest, model) per entry, in key order
        assert fixed_args(call) == (MAGIC,)
        assert item_args(call) == [(digest(by_key[k]), b"m1") for k in entries]
        covered += entries
    assert sorted(covered) == sorted(by_key)

    # answer: every even request is a hit carrying its own number
    replies = []
    for call in batch.calls:
        row: list[bytes | None] = []
        for k in _entries(call):
            i = reqs.index(by_key[k])
            row.append(envelope(core, answer(f"a{i}")) if i % 2 == 0 else None)
        replies.append(row)
    op.reply(replies)
    result = op.result
    assert contents(result) == [f"a{i}" if i % 2 == 0 else None for i in range(30)]
    assert len(op.trace) == 1  # no corrupt entry: no second round trip


def test_get_many_cuts_a_big_shard_into_calls_of_at_most_500_entries() -> None:
    core = make_core()
    reqs = [request(i) for i in range(2 * BATCH_CHUNK + 1)]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    batch = op.expect_batch()
    assert BATCH_CHUNK <= 500
    assert [len(_entries(c)) for c in batch.calls] == [BATCH_CHUNK, BATCH_CHUNK, 1]
    assert all(len(c.keys) <= 1000 for c in batch.calls)
    op.reply([[None] * len(_entries(c)) for c in batch.calls])
    assert op.result == [None] * len(reqs)


def test_get_many_duplicates_are_each_read_and_answered() -> None:
    core = make_core()
    reqs = [request(1), request(1), request(2)]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    (call,) = op.expect_batch("get_many").calls
    assert len(_entries(call)) == 3
    hit = envelope(core, answer("one"))
    op.reply([[hit, hit, None]])
    assert contents(op.result) == ["one", "one", None]


def test_get_many_drops_corrupt_bodies_in_one_more_batch() -> None:
    core = make_core()
    reqs = [request(i) for i in range(4)]
    bad = corrupt_envelopes(tokens=3)
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    op.expect_batch("get_many")
    good = envelope(core, answer("fine"))
    op.reply([[bad["bad msgpack"], good, None, bad["unknown flag"]]])
    drops = op.expect_batch("drop_corrupt", "drop_corrupt")
    assert [c.args for c in drops.calls] == [
        (digest(reqs[0]), b"m1", bad["bad msgpack"], "1"),
        (digest(reqs[3]), b"m1", bad["unknown flag"], "1"),
    ]
    op.reply([1, 1])
    assert contents(op.result) == [None, "fine", None, None]


def test_get_many_reading_one_corrupt_entry_thrice_counts_corrupt_once() -> None:
    """The same corrupt entry requested three times in one batch: each read undoes its own
    counted hit (model, tokens), and all three drops are compare-and-delete on the same
    bytes, so only the one that deletes counts corrupt (the others reply 0)."""
    core = make_core()
    raw = corrupt_envelopes(tokens=2)["bad zlib"]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, [request(1)] * 3)))
    op.expect_batch("get_many")
    op.reply([[raw, raw, raw]])
    drops = op.expect_batch("drop_corrupt", "drop_corrupt", "drop_corrupt")
    assert {c.keys for c in drops.calls} == {core.keys.entry_keys(0, digest(request(1)))}
    assert [c.args for c in drops.calls] == [(digest(request(1)), b"m1", raw, "1")] * 3
    op.reply([1, 0, 0])  # one deleted it (and counted corrupt); the others found it gone
    assert op.result == [None] * 3 and len(op.trace) == 2


def test_get_many_keeps_entries_a_stricter_model_rejects() -> None:
    """A body that decodes but fails this cache's model is a miss with mode "0" (kept,
    counted rejected), next to an undecodable one (mode "1", dropped) in the same Batch."""
    writer = make_core()
    core = make_core(response_model=Strict)
    reqs = [request(0), request(1)]
    ok_elsewhere = envelope(writer, answer("short", tokens=4))
    bad = corrupt_envelopes(tokens=3)["not a map"]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    op.expect_batch("get_many")
    op.reply([[ok_elsewhere, bad]])
    drops = op.expect_batch("drop_corrupt", "drop_corrupt")
    assert [c.args for c in drops.calls] == [
        (digest(reqs[0]), b"m1", ok_elsewhere, "0"),
        (digest(reqs[1]), b"m1", bad, "1"),
    ]
    op.reply([0, 1])
    assert op.result == [None, None]


def test_get_many_of_nothing_does_no_io() -> None:
    core = make_core()
    op = ScriptedOp(op_get_many(core, plan_get_many(core, [])))
    assert op.done and op.result == [] and op.trace == []


@pytest.mark.parametrize(
    ("requests", "error", "where"),
    [
        ("abc", TypeError, "iterable"),
        ([request(0), "abc"], TypeError, "request 1"),
        ([request(0), request(1)[:4]], ValueError, "request 1"),
        ([request(0), (1, "s", "m", 0.0, 1)], TypeError, "user_message"),
    ],
)
def test_get_many_checks_every_request_before_any_io(
    requests: object, error: type, where: str
) -> None:
    with pytest.raises(error, match=where):
        plan_get_many(make_core(), requests)


# -- put_many ----------------------------------------------------------------------------------


def test_put_many_is_one_batch_of_per_shard_calls_with_ttl_in_ms() -> None:
    core = make_core(shards=3, ttl_seconds=10)
    items = [(*request(i), answer(f"a{i}")) for i in range(12)]
    refused: list[Exception] = []
    plan, ttl_ms = plan_put_many(core, items, 2.5, refused.append)
    assert ttl_ms == 2500 and not refused
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    batch = op.expect_batch()
    layout, *puts = batch.calls  # the layout re-assertion first, in the same round trip
    assert layout.script.name == "layout" and layout.args == (core.layout, "1")
    assert {c.script.name for c in puts} == {"put_many"}
    assert len(puts) == len({_shard(core, it[:5]) for it in items})
    stored = {}
    for call in puts:
        ttl, prune, cap = fixed_args(call)
        assert ttl == 2500  # ms
        assert isinstance(prune, int) and 0 < prune <= 1000  # bounded pruning
        assert cap == 0  # no max_entries: no cap
        for key, (d, payload) in zip(_entries(call), item_args(call), strict=True):
            assert isinstance(d, str) and isinstance(payload, bytes) and key.endswith(f"e:{d}")
            stored[d] = contents([core.codec.decode(payload)])[0]
    assert stored == {digest(it[:5]): f"a{i}" for i, it in enumerate(items)}
    op.reply([layout_ok(core), *[2] * len(puts)])
    assert op.result == 2 * len(puts)  # new entries, added up (not the layout reply)


def test_put_many_uses_the_cache_ttl_by_default_and_chunks_at_500() -> None:
    core = make_core(ttl_seconds=0.5)
    items = [(*request(i), answer()) for i in range(BATCH_CHUNK + 3)]
    plan, ttl_ms = plan_put_many(core, items, None, lambda exc: None)
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    _layout, *puts = op.expect_batch("layout", "put_many", "put_many").calls
    assert [len(_entries(c)) for c in puts] == [BATCH_CHUNK, 3]
    assert {fixed_args(c)[0] for c in puts} == {500}


def test_put_many_skips_an_item_over_max_entry_bytes_through_refuse() -> None:
    core = make_core(max_entry_bytes=200, compress_threshold=None)
    items = [(*request(0), answer("small")), (*request(1), answer("x" * 500))]
    refused: list[Exception] = []
    plan, ttl_ms = plan_put_many(core, items, None, refused.append)
    assert len(refused) == 1 and isinstance(refused[0], EntryTooLargeError)
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    _layout, call = op.expect_batch("layout", "put_many").calls
    assert [d for d, _payload in item_args(call)] == [digest(request(0))]


def test_put_many_refusal_that_raises_stops_before_any_io() -> None:
    core = make_core(max_entry_bytes=200, compress_threshold=None)
    items = [(*request(0), answer("x" * 500))]

    def refuse(exc: Exception) -> None:
        raise exc

    with pytest.raises(EntryTooLargeError):
        plan_put_many(core, items, None, refuse)


def test_put_many_passes_each_shards_cap() -> None:
    """With ``max_entries`` every shard's call carries that shard's share of the cap."""
    core = make_core(shards=3, max_entries=10)
    items = [(*request(i), answer()) for i in range(30)]
    plan, ttl_ms = plan_put_many(core, items, None, lambda exc: None)
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    caps = {}
    layout, *puts = op.expect_batch().calls
    assert layout.args == ("fleetcache-1;shards=3;max_entries=10", "1")  # cap is recorded
    for call in puts:
        shard = int(call.keys[0].split(":")[1].rstrip("}"))
        caps[shard] = fixed_args(call)[2]
    assert caps == {0: 4, 1: 3, 2: 3}  # 10 split as evenly as possible, adding up to 10


def test_put_many_reasserts_the_layout_once_per_batch() -> None:
    """One ``layout-1`` call (write mode, on ``{P}:meta``) however many shards and calls;
    another recorded layout raises the mismatch after the round trip."""
    core = make_core(shards=4)
    items = [(*request(i), answer()) for i in range(40)]
    plan, ttl_ms = plan_put_many(core, items, None, lambda exc: None)
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    batch = op.expect_batch()
    names = [c.script.name for c in batch.calls]
    assert names[0] == "layout" and names.count("layout") == 1
    assert batch.calls[0].keys == (meta_key(core),)
    with pytest.raises(LayoutMismatchError):
        op.reply([[b"fleetcache-1;shards=1", 0], *[1] * (len(names) - 1)])


def test_put_many_of_nothing_does_no_io() -> None:
    core = make_core()
    plan, ttl_ms = plan_put_many(core, [], None, lambda exc: None)
    op = ScriptedOp(op_put_many(core, plan, ttl_ms))
    assert op.done and op.result == 0 and op.trace == []


def test_put_many_checks_items_and_ttl_before_any_io() -> None:
    core = make_core()
    with pytest.raises(ValueError, match="item 0"):
        plan_put_many(core, [request(0)], None, lambda exc: None)  # 5 fields, not 6
    with pytest.raises(ValueError, match="ttl"):
        plan_put_many(core, [(*request(0), answer())], -1, lambda exc: None)


def test_batch_is_a_single_instruction() -> None:
    """Both bulk ops hand the store one ``Batch`` (one pipelined round trip per node)."""
    core = make_core(shards=5)
    reqs = [request(i) for i in range(50)]
    op = ScriptedOp(op_get_many(core, plan_get_many(core, reqs)))
    assert isinstance(op.pending, Batch) and len(op.trace) == 1
