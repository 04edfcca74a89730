"""The single-entry and management ops of the pure core, run by the scripted driver (no
Redis): what each op asks the server to run (script, KEYS, ARGV), how it reads the reply,
and what it returns. The driver also checks every call's shape against its Lua source."""

from __future__ import annotations

import math

import pytest
from pydantic import Field

from fleetcache import ChunkProgress, FleetStats, LayoutMismatchError
from fleetcache.core.envelope import MAGIC
from fleetcache.core.instructions import Call
from fleetcache.core.models import LLMResponse
from fleetcache.core.ops import (
    CHUNK,
    op_check_layout,
    op_clear,
    op_fleet_stats,
    op_get,
    op_invalidate,
    op_put,
    op_reconcile,
    op_reset_stats,
    op_size,
)
from fleetcache.errors import EntryTooLargeError

from ..support.core_data import (
    FIELDS,
    answer,
    corrupt_envelopes,
    digest,
    entry_keys,
    envelope,
    expect_put,
    layout_ok,
    make_core,
    meta_key,
)
from ..support.script_driver import ScriptedOp, run_op

# -- get ---------------------------------------------------------------------------------


def test_get_hit_is_one_call_that_returns_the_decoded_entry() -> None:
    core = make_core()
    op = ScriptedOp(op_get(core, FIELDS))
    call = op.expect_call("get")
    assert call.keys == entry_keys(core)
    assert call.args == (digest(), b"m1", MAGIC)  # digest, model, accepted magic
    resp = answer()
    op.reply(envelope(core, resp))
    assert op.result == resp
    assert len(op.trace) == 1


def test_get_miss_returns_none_after_one_call() -> None:
    core = make_core()
    op = ScriptedOp(op_get(core, FIELDS))
    op.expect_call("get")
    op.reply(None)
    assert op.done and op.result is None
    assert len(op.trace) == 1


@pytest.mark.parametrize("kind", sorted(corrupt_envelopes()))
def test_get_corrupt_hit_is_dropped_and_becomes_a_miss(kind: str) -> None:
    core = make_core()
    raw = corrupt_envelopes(tokens=5)[kind]
    op = ScriptedOp(op_get(core, FIELDS))
    op.expect_call("get")
    op.reply(raw)
    drop = op.expect_call("drop_corrupt")
    assert drop.keys == entry_keys(core)
    # undo the counted hit for this model and its tokens; delete only these exact bytes
    # (mode "1": undecodable, counted corrupt by the call that deletes it)
    assert drop.args == (digest(), b"m1", raw, "1")
    op.reply(1)
    assert op.result is None
    assert [s.script.name for s in op.trace if isinstance(s, Call)] == ["get", "drop_corrupt"]


def test_get_model_name_with_a_lone_surrogate_is_sent_as_bytes() -> None:
    core = make_core()
    fields = ("q", "s", "m\udcff", 0.0, 1)
    op = ScriptedOp(op_get(core, fields))
    assert op.expect_call("get").args[1] == "m\udcff".encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (("q", "s", "m", 0.0, "64"), TypeError),
        (("q", "s", "m", None, 64), TypeError),
        (("q", "s", "m", math.nan, 64), ValueError),
        (("q", b"s", "m", 0.0, 64), TypeError),
    ],
)
def test_bad_request_is_refused_before_any_io(fields: tuple[object, ...], error: type) -> None:
    with pytest.raises(error):
        ScriptedOp(op_get(make_core(), fields))


def test_sharded_request_uses_its_shard_keys_only() -> None:
    core = make_core(shards=8)
    seen = set()
    for i in range(40):
        fields = (f"q{i}", "s", "m", 0.0, 1)
        op = ScriptedOp(op_get(core, fields))
        call = op.expect_call("get")
        assert call.keys == entry_keys(core, fields)  # one hash tag: checked by the driver
        seen.add(call.keys[1])
    assert len(seen) > 1  # forty digests do not all land in one of eight shards


# -- put ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_ttl", "call_ttl", "ms"),
    [(None, None, 0), (1.5, None, 1500), (1.5, 0.25, 250), (None, 0.0014, 1), (None, 2, 2000)],
)
def test_put_encodes_the_response_with_the_ttl_in_ms(
    cache_ttl: float | None, call_ttl: float | None, ms: int
) -> None:
    core = make_core(ttl_seconds=cache_ttl)
    resp = answer(tokens=9)
    op = ScriptedOp(op_put(core, FIELDS, resp, call_ttl))
    call = expect_put(op, core)
    assert call.keys == entry_keys(core)
    d, payload, ttl_ms, prune, cap = call.args
    assert d == digest()
    assert cap == 0  # no max_entries: no cap
    assert isinstance(payload, bytes) and core.codec.decode(payload) == resp
    assert payload.startswith(MAGIC + b"\x02")
    assert ttl_ms == ms
    assert isinstance(prune, int) and 0 < prune <= 1000  # bounded pruning per put
    op.reply([layout_ok(core), 1])
    assert op.done and op.result is None


def test_put_with_max_entries_passes_the_shards_cap() -> None:
    core = make_core(max_entries=7)
    op = ScriptedOp(op_put(core, FIELDS, answer()))
    assert expect_put(op, core).args[4] == 7


@pytest.mark.parametrize(
    ("ttl", "error"), [(0, ValueError), (-1, ValueError), (math.inf, ValueError), ("1", TypeError)]
)
def test_put_with_a_bad_ttl_is_refused_before_any_io(ttl: object, error: type) -> None:
    with pytest.raises(error):
        ScriptedOp(op_put(make_core(), FIELDS, answer(), ttl))


def test_put_of_an_answer_over_max_entry_bytes_sends_nothing() -> None:
    core = make_core(max_entry_bytes=64, compress_threshold=None)
    with pytest.raises(EntryTooLargeError):
        ScriptedOp(op_put(core, FIELDS, answer("x" * 200)))


def test_put_of_something_that_is_not_a_model_sends_nothing() -> None:
    with pytest.raises(TypeError):
        ScriptedOp(op_put(make_core(), FIELDS, "not a model"))  # type: ignore[arg-type]


def test_large_bodies_are_compressed_and_still_decode() -> None:
    core = make_core(compress_threshold=100)
    resp = answer("abc " * 500)
    op = ScriptedOp(op_put(core, FIELDS, resp))
    payload = expect_put(op, core).args[1]
    assert isinstance(payload, bytes) and len(payload) < 500
    assert core.codec.decode(payload) == resp


# -- invalidate, layout -------------------------------------------------------------------


@pytest.mark.parametrize(("deleted", "expected"), [(1, True), (0, False)])
def test_invalidate_returns_whether_a_live_entry_was_deleted(deleted: int, expected: bool) -> None:
    core = make_core()
    op = ScriptedOp(op_invalidate(core, FIELDS))
    call = op.expect_call("invalidate")
    assert call.keys == entry_keys(core) and call.args == (digest(),)
    op.reply(deleted)
    assert op.result is expected


def test_layout_is_recorded_then_accepted() -> None:
    core = make_core(shards=3)
    op = ScriptedOp(op_check_layout(core))
    call = op.expect_call("layout")
    assert call.keys == ("{t}:meta",)
    layout, mode = call.args
    assert isinstance(layout, str) and "shards=3" in layout
    assert mode == "1"  # a data call records the layout when none is recorded
    op.reply([layout.encode(), 1])  # {recorded (bytes), written}
    assert op.done and core.layout_checked


def test_layout_recorded_differently_is_refused() -> None:
    core = make_core(shards=3)
    op = ScriptedOp(op_check_layout(core))
    op.expect_call("layout")
    with pytest.raises(LayoutMismatchError, match="shards="):
        op.reply([b"fleetcache-1;shards=1", 0])
    assert not core.layout_checked


def test_looking_at_the_layout_never_writes_it() -> None:
    """``write=False`` (stats, len, the CLI): read-only mode "0"; nothing recorded is no
    error, and the layout is not marked checked (nothing proved it ours)."""
    core = make_core(shards=3)
    op = ScriptedOp(op_check_layout(core, write=False))
    call = op.expect_call("layout")
    assert call.keys == (meta_key(core),) and call.args == (core.layout, "0")
    op.reply([False, 0])
    assert op.done and not core.layout_checked


def test_looking_still_refuses_another_layout() -> None:
    core = make_core(shards=3)
    op = ScriptedOp(op_check_layout(core, write=False))
    op.expect_call("layout")
    with pytest.raises(LayoutMismatchError):
        op.reply([b"fleetcache-1;shards=2", 0])


def test_a_layout_write_refused_at_oom_is_not_an_error() -> None:
    """At maxmemory (noeviction) the record cannot be written: the reply says nothing is
    recorded; the cache goes on (every put re-asserts the layout)."""
    core = make_core()
    op = ScriptedOp(op_check_layout(core))
    op.expect_call("layout")
    op.reply([False, 0])
    assert op.done and core.layout_checked


# -- the layout re-asserted by every put ---------------------------------------------------


def test_put_reasserts_the_layout_in_the_same_round_trip() -> None:
    """The put is batched after ``layout-1`` in write mode: a fleet whose record vanished
    (a restart without persistence, an eviction) records it again on its next put."""
    core = make_core(shards=2, max_entries=10)
    assert core.layout.endswith(";max_entries=10")  # the cap is part of the layout
    op = ScriptedOp(op_put(core, FIELDS, answer()))
    put = expect_put(op, core)  # (layout, put): one Batch, one round trip
    assert put.keys == entry_keys(core)
    op.reply([layout_ok(core, written=1), 1])  # the record was missing: written again
    assert op.done and core.layout_checked


def test_put_whose_layout_record_is_another_raises_the_mismatch() -> None:
    core = make_core(shards=2)
    op = ScriptedOp(op_put(core, FIELDS, answer()))
    expect_put(op, core)
    with pytest.raises(LayoutMismatchError, match="shards=2"):
        op.reply([[b"fleetcache-1;shards=4", 0], 1])
    assert not core.layout_checked


def test_put_whose_layout_write_was_refused_goes_on() -> None:
    core = make_core()
    op = ScriptedOp(op_put(core, FIELDS, answer()))
    expect_put(op, core)
    op.reply([[False, 0], 1])  # OOM: the record could not be written, the put is fine
    assert op.done and op.result is None


# -- size, stats, reset ---------------------------------------------------------------------


def test_size_is_one_batch_of_one_call_per_shard() -> None:
    core = make_core(shards=3)
    op = ScriptedOp(op_size(core))
    batch = op.expect_batch("size", "size", "size")
    assert [c.keys for c in batch.calls] == [(f"{{t:{s}}}:i",) for s in range(3)]
    op.reply([1, 2, 3])
    assert op.result == 6


def test_fleet_stats_adds_up_every_shard_and_model() -> None:
    core = make_core(shards=2)
    op = ScriptedOp(op_fleet_stats(core))
    batch = op.expect_batch("stats", "stats")
    assert [c.keys for c in batch.calls] == [(f"{{t:{s}}}:i", f"{{t:{s}}}:s") for s in range(2)]
    op.reply(
        [
            (4, [b"hits", b"3", b"misses", b"1", b"mh:m1", b"3", b"mm:m1", b"1", b"odd", b"9"]),
            (1, [b"hits", b"2", b"tokens_saved", b"80", b"mm:m\xc3\xa9", b"5", b"coalesced", b"1"]),
        ]
    )
    fs = op.result
    assert isinstance(fs, FleetStats)
    assert (fs.size, fs.hits, fs.misses, fs.tokens_saved, fs.coalesced) == (5, 5, 1, 80, 1)
    assert fs.by_model["m1"].hits == 3 and fs.by_model["m1"].misses == 1
    assert fs.by_model["mé"].misses == 5  # model names decoded from UTF-8


def test_reset_stats_names_every_shards_counters() -> None:
    core = make_core(shards=2)
    op = ScriptedOp(op_reset_stats(core))
    batch = op.expect_batch("reset_stats", "reset_stats")
    assert [c.keys for c in batch.calls] == [("{t:0}:s",), ("{t:1}:s",)]
    op.reply([1, 1])
    assert op.done


# -- chunked clear ---------------------------------------------------------------------------


def test_clear_walks_each_shard_in_chunks_until_it_is_empty() -> None:
    core = make_core(shards=2)
    seen: list[ChunkProgress] = []
    op = ScriptedOp(op_clear(core, chunk=500, progress=seen.append))
    for shard, left in [(0, 700), (0, 200), (0, 0), (1, 0)]:
        call = op.expect_call("clear")
        assert call.keys == (f"{{t:{shard}}}:i", f"{{t:{shard}}}:s")
        assert call.args == (500,)
        op.reply(left)
    assert op.result == 4  # script calls made
    assert [(p.shard, p.shards, p.calls, p.left) for p in seen] == [
        (0, 2, 1, 700),
        (0, 2, 2, 200),
        (0, 2, 3, 0),
        (1, 2, 4, 0),
    ]


def test_clear_default_chunk_is_bounded_work() -> None:
    op = ScriptedOp(op_clear(make_core()))
    (chunk,) = op.expect_call("clear").args
    assert chunk == CHUNK and isinstance(chunk, int) and 0 < chunk <= 1000


def test_clear_stops_when_writers_keep_refilling_the_shard() -> None:
    """A shard that never empties (writers racing) ends after about twice the calls its
    first size needs, instead of looping forever."""
    left = 1000
    _calls, trace = run_op(op_clear(make_core(), chunk=100), lambda _step: left)
    needed = math.ceil(left / 100)
    assert needed < len(trace) <= 2 * needed + 11


# -- chunked reconcile -------------------------------------------------------------------------


def test_reconcile_resumes_where_the_server_says_and_adds_up_removals() -> None:
    core = make_core(shards=2)
    seen: list[ChunkProgress] = []
    op = ScriptedOp(op_reconcile(core, chunk=3, progress=seen.append))
    # shard 0: 3 checked (1 gone) -> resume at 2; 3 checked (0 gone) -> 5; 1 checked: done
    script = [(0, (0, 3), (2, 1, 3)), (0, (2, 3), (5, 0, 3)), (0, (5, 3), (6, 0, 1))]
    script += [(1, (0, 3), (0, 2, 2))]  # shard 1: 2 checked, both gone: done
    for shard, args, reply in script:
        call = op.expect_call("reconcile")
        assert call.keys == (f"{{t:{shard}}}:i", f"{{t:{shard}}}:s")
        assert call.args == args  # (start rank, chunk)
        op.reply(list(reply))
    assert op.result == 3
    assert [(p.shard, p.calls, p.checked, p.removed) for p in seen] == [
        (0, 1, 3, 1),
        (0, 2, 6, 1),
        (0, 3, 7, 1),
        (1, 4, 9, 3),
    ]


def test_reconcile_of_an_empty_namespace_is_one_call_per_shard() -> None:
    removed, trace = run_op(op_reconcile(make_core(shards=3)), lambda _step: [0, 0, 0])
    assert removed == 0 and len(trace) == 3


# -- signed entries ------------------------------------------------------------------------

KEY = b"k" * 32


def test_signed_cache_serves_an_entry_it_signed() -> None:
    core = make_core(signing_key=KEY)
    resp = answer()
    put = ScriptedOp(op_put(core, FIELDS, resp))
    payload = expect_put(put, core).args[1]
    assert isinstance(payload, bytes)
    put.reply([layout_ok(core), 1])
    get = ScriptedOp(op_get(core, FIELDS))
    get.expect_call("get")
    get.reply(payload)
    assert get.result == resp and len(get.trace) == 1


@pytest.mark.parametrize("writer", ["unsigned", "other key", "other request"])
def test_signed_cache_drops_an_entry_that_does_not_verify(writer: str) -> None:
    core = make_core(signing_key=KEY)
    if writer == "unsigned":
        raw = envelope(make_core(), answer(tokens=9))
    elif writer == "other key":
        raw = make_core(signing_key=b"o" * 32).encode(answer(tokens=9), digest())
    else:  # signed for another request's digest, copied under this one's key
        raw = core.encode(answer(tokens=9), digest(("other", "s", "m1", 0.0, 1)))
    op = ScriptedOp(op_get(core, FIELDS))
    op.expect_call("get")
    op.reply(raw)
    drop = op.expect_call("drop_forged")
    assert drop.keys == entry_keys(core)
    # undo the counted hit (model, tokens credited), delete only these bytes
    assert drop.args == (digest(), b"m1", raw, "hit")
    op.reply(1)
    assert op.result is None


# -- rejected: decodes, but not as this cache's (stricter) model ---------------------------


class Strict(LLMResponse):
    """A stricter response model (a newer release mid-rollout): ``content`` required."""

    content: str = Field(min_length=30)


def test_an_entry_a_stricter_model_rejects_is_a_miss_that_keeps_it() -> None:
    """Written by a process whose model accepts it, read by one whose model does not: a
    miss (the counted hit undone), counted rejected, and NOT deleted (mode "0"), since the
    other processes still use it."""
    raw = envelope(make_core(), answer("short", tokens=6))
    core = make_core(response_model=Strict)
    op = ScriptedOp(op_get(core, FIELDS))
    op.expect_call("get")
    op.reply(raw)
    drop = op.expect_call("drop_corrupt")
    assert drop.keys == entry_keys(core)
    assert drop.args == (digest(), b"m1", raw, "0")  # "0": keep it, count rejected
    op.reply(0)  # not deleted
    assert op.done and op.result is None


def test_the_stricter_model_still_serves_what_it_accepts() -> None:
    resp = Strict(content="long enough to pass the strict model", usage={"total_tokens": 1})
    core = make_core(response_model=Strict)
    op = ScriptedOp(op_get(core, FIELDS))
    op.expect_call("get")
    op.reply(envelope(make_core(), resp))
    assert op.result == resp and len(op.trace) == 1
