"""Single-flight (``get_or_compute``) in the pure core, branch by branch, run by the scripted
driver with a fake clock: no Redis, no real sleep. Each test feeds the replies of
``get_or_lease-4`` ({1, bytes} hit, {2} lease granted, {3, pttl} lease held elsewhere, {4}
the holder's answer could not be stored) and asserts what the flight asks for next: a
Compute (renewing the lease, for a holder), a put batched with the layout re-assertion, a
release (or the "uncacheable" marker), or a Sleep of how long."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from pydantic import Field

from fleetcache.core.flight import (
    LEASE_GRANT_MS,
    RENEW_MIN_INTERVAL,
    RENEW_PER_LEASE,
    UNCACHEABLE_MARKER_MS,
    Flight,
)
from fleetcache.core.instructions import Call, Compute, Sleep
from fleetcache.core.models import LLMResponse
from fleetcache.core.ops import Core
from fleetcache.errors import EntryTooLargeError, LayoutMismatchError

from ..support.core_data import (
    FIELDS,
    answer,
    corrupt_envelopes,
    digest,
    entry_keys,
    envelope,
    expect_put,
    layout_ok,
    lease_key,
    make_core,
)
from ..support.script_driver import FakeClock, ScriptedOp

HIT, GRANTED, HELD, UNCACHEABLE = 1, 2, 3, 4
#: The poll intervals a waiter sleeps (s): 2 ms, growing x1.5, capped at 25 ms.
BACKOFF = [0.002, 0.003, 0.0045, 0.00675, 0.010125, 0.0151875, 0.02278125, 0.025, 0.025]


def start(
    core: Core | None = None,
    *,
    lease: float = 30.0,
    wait: float | None = None,
    clock: FakeClock | None = None,
) -> tuple[Flight, ScriptedOp[Any], list[Exception]]:
    core = core or make_core()
    refused: list[Exception] = []
    flight = Flight(core, core.key_of_fields(FIELDS)[1], lease, wait, refused.append)
    return flight, ScriptedOp(flight.run(), clock), refused


def granted(
    core: Core, clock: FakeClock
) -> tuple[Flight, ScriptedOp[Any], list[Exception], str | bytes | int | float]:
    """A flight whose first look is a miss with the lease granted: it now asks to Compute.
    Returns the flight, its driver, what it refused, and its lease token."""
    flight, op, refused = start(core, clock=clock)
    token = lease_call(op, first=True).args[3]
    grant(op)
    op.expect_compute()
    return flight, op, refused, token


def grant(op: ScriptedOp[Any], confirmed: int = 1) -> Call:
    """Answer a pending lease call "granted", then the holder's confirmation (the
    ``renew_lease`` call extending the short grant to the full 30 s lease) with
    ``confirmed``; returns that call."""
    op.reply([GRANTED])
    call = op.expect_call("renew_lease")
    op.reply(confirmed)
    return call


def lease_call(op: ScriptedOp[Any], *, first: bool) -> Call:
    call = op.expect_call("get_or_lease")
    assert call.args[5] == ("1" if first else "0")  # first look counts hit/miss; polls do not
    return call


def finish(op: ScriptedOp[Any], store: str = "put_release", core: Core | None = None) -> None:
    """Answer a pending Compute and the call storing its answer (``put_release`` with a
    lease, ``put`` without), batched after the layout re-assertion. A holder's Compute
    renews its lease, a lease-less one does not. A flight is never left suspended at a
    Compute: closing it there would run its release path."""
    core = core or make_core()
    compute = op.expect_compute()
    assert (compute.renew is not None) == (store == "put_release")
    op.reply(answer())
    expect_put(op, core, store)
    op.reply([layout_ok(core), [1, 1] if store == "put_release" else 1])
    assert op.done


def test_lease_call_names_entry_and_lease_keys_and_the_lease_in_ms(clock: FakeClock) -> None:
    core = make_core()
    _f, op, _ = start(core, lease=1.5, clock=clock)
    call = lease_call(op, first=True)
    assert call.keys == (*entry_keys(core), lease_key(core))
    d, model, _magic, token, lease_ms, _mode = call.args
    assert (d, model, lease_ms) == (digest(), b"m1", 1000)  # the short grant, see below
    assert isinstance(token, str) and len(token) >= 16


def test_hit_returns_the_entry_after_one_call(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    resp = answer()
    op.reply([HIT, envelope(core, resp)])
    assert op.result == resp
    assert not flight.computed and not flight.coalesced and len(op.trace) == 1


def test_lease_granted_computes_then_stores_and_releases_in_one_call(clock: FakeClock) -> None:
    core = make_core(ttl_seconds=60)
    flight, op, _, token = granted(core, clock)
    resp = answer("computed")
    op.reply(resp)
    put = expect_put(op, core, "put_release")  # with the layout, in one round trip
    assert put.keys == (*entry_keys(core), lease_key(core))
    d, payload, ttl_ms, _prune, tok, cap = put.args
    assert (d, ttl_ms, tok, cap) == (digest(), 60_000, token, 0)  # released only if ours
    assert isinstance(payload, bytes) and core.codec.decode(payload) == resp
    op.reply([layout_ok(core), [1, 1]])
    assert op.result == resp and flight.computed and flight.response == resp


@pytest.mark.parametrize(
    ("lease", "every"),
    [(30.0, 30.0 / RENEW_PER_LEASE), (0.9, 0.3), (0.012, RENEW_MIN_INTERVAL)],
)
def test_a_holder_renews_its_lease_while_computing(
    clock: FakeClock, lease: float, every: float
) -> None:
    """The holder's Compute carries ``renew_lease-1`` (its own token, the full lease in ms)
    to run every lease/3 s (at least 10 ms apart) while compute runs, so a compute slower
    than the lease keeps it and the waiters do not start computing too."""
    core = make_core()
    _f, op, _ = start(core, lease=lease, clock=clock)
    token = lease_call(op, first=True).args[3]
    if lease > LEASE_GRANT_MS / 1000:
        grant(op)
    else:  # a lease no longer than the grant is the grant: nothing to confirm
        op.reply([GRANTED])
    compute = op.expect_compute()
    assert compute.renew is not None
    assert compute.renew.script.name == "renew_lease"
    assert compute.renew.keys == (lease_key(core),)
    assert compute.renew.args == (token, round(lease * 1000))  # compare-and-extend, ms
    assert compute.every == pytest.approx(every)
    assert 0 < compute.every < lease  # renewed before it can lapse
    op.reply(answer())
    expect_put(op, core, "put_release")
    op.reply([layout_ok(core), [1, 1]])
    assert op.done


@pytest.mark.parametrize(("lease", "grant_ms"), [(30.0, 1000), (1.5, 1000), (0.4, 400)])
def test_a_lease_is_granted_short_until_its_holder_confirms_it(
    clock: FakeClock, lease: float, grant_ms: int
) -> None:
    """The lease script is asked for ``min(lease, LEASE_GRANT_MS)``: a grant whose reply
    never reaches its caller (a timeout in a stall, a cancelled task) blocks the others for
    at most that long. The holder, having seen the grant, extends it to the full lease with
    ``renew_lease`` (its token, the lease in ms) before it computes."""
    core = make_core()
    _f, op, _ = start(core, lease=lease, clock=clock)
    call = lease_call(op, first=True)
    assert call.args[4] == grant_ms == min(round(lease * 1000), LEASE_GRANT_MS)
    if grant_ms < round(lease * 1000):
        confirm = grant(op)
        assert confirm.keys == (lease_key(core),)
        assert confirm.args == (call.args[3], round(lease * 1000))
    else:
        op.reply([GRANTED])
    compute = op.expect_compute()
    assert compute.every == pytest.approx(max(lease / RENEW_PER_LEASE, RENEW_MIN_INTERVAL))
    op.reply(answer())
    expect_put(op, core, "put_release")
    op.reply([layout_ok(core), [1, 1]])
    assert op.done


def test_a_grant_that_ended_before_its_confirmation_is_not_held(clock: FakeClock) -> None:
    """The confirmation finds the lease gone (the holder stalled longer than the grant:
    another caller may hold it now): compute without a lease, store with a plain put."""
    flight, op, _ = start(clock=clock)
    lease_call(op, first=True)
    grant(op, confirmed=0)
    finish(op, "put")
    assert flight.computed


def test_a_confirmation_lost_to_a_fault_keeps_the_lease_renewed_within_the_grant(
    clock: FakeClock,
) -> None:
    """Redis fails to answer the confirmation: it may or may not have landed, so the holder
    keeps the lease and computes, renewing it every grant/3 (not lease/3) so a short grant
    does not lapse; it then stores and releases as a holder."""
    _f, op, _ = start(clock=clock)
    lease_call(op, first=True)
    op.reply([GRANTED])
    op.expect_call("renew_lease")
    op.throw(redis.exceptions.TimeoutError("stalled"))
    compute = op.expect_compute()
    assert compute.renew is not None and compute.renew.script.name == "renew_lease"
    assert compute.every == pytest.approx(LEASE_GRANT_MS / 1000 / RENEW_PER_LEASE)
    op.reply(answer())
    expect_put(op, make_core(), "put_release")
    op.reply([layout_ok(make_core()), [1, 1]])
    assert op.done


def test_a_holder_cancelled_during_its_confirmation_gives_the_lease_up(
    clock: FakeClock,
) -> None:
    """An asyncio task cancelled while its confirmation is in flight: the holder releases
    the lease (compare-and-delete) before the cancellation goes on, so a confirmation that
    lands later finds nothing to extend and nobody is left holding a 30 s lease."""
    _f, op, _ = start(clock=clock)
    token = lease_call(op, first=True).args[3]
    op.reply([GRANTED])
    op.expect_call("renew_lease")
    op.throw(asyncio.CancelledError())
    release = op.expect_call("release_lease")
    assert release.args == (token, 0)  # 0: delete it, a waiter takes over
    with pytest.raises(asyncio.CancelledError):
        op.reply(1)


def test_a_caller_without_a_lease_renews_nothing(clock: FakeClock) -> None:
    _f, op, _ = start(wait=0, clock=clock)
    lease_call(op, first=True)
    op.reply([HELD, 60_000])
    assert op.expect_compute() == Compute()  # no renewal call
    finish(op, "put")


def test_lease_held_polls_with_backoff_until_the_answer_lands(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    sleeps = []
    for _ in BACKOFF:
        op.reply([HELD, 60_000])  # the lease ends far in the future
        sleeps.append(op.expect_sleep())
        op.reply()
        lease_call(op, first=False)
    assert sleeps == pytest.approx(BACKOFF)
    resp = answer("from a peer")
    op.reply([HIT, envelope(core, resp)])
    assert op.result == resp and flight.coalesced and not flight.computed
    assert clock.now == pytest.approx(1000.0 + sum(BACKOFF))  # simulated time, not slept


def test_waiter_wakes_just_after_the_lease_ends_and_takes_it_over(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    for _ in range(4):  # poll interval is now 6.75 ms
        op.reply([HELD, 60_000])
        op.expect_sleep()
        op.reply()
        lease_call(op, first=False)
    op.reply([HELD, 2])  # the lease ends in 2 ms: sleep 2 ms + 1 ms, not 6.75 ms
    assert op.expect_sleep() == pytest.approx(0.003)
    op.reply()
    lease_call(op, first=False)
    grant(op)  # the holder died: the lease is ours now
    finish(op)
    assert flight.computed


def test_wait_timeout_ends_the_wait_and_computes_without_a_lease(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start(core, wait=0.01, clock=clock)
    lease_call(op, first=True)
    t0 = clock.now
    slept = []
    while True:
        op.reply([HELD, 60_000])
        if not isinstance(op.pending, Sleep):
            break
        slept.append(op.expect_sleep())
        op.reply()
        lease_call(op, first=False)
    assert op.expect_compute().renew is None  # no lease: nothing to renew
    # 2 + 3 + 4.5 ms, then only the 0.5 ms left: no sleep goes past the deadline
    assert slept == pytest.approx([0.002, 0.003, 0.0045, 0.0005])
    assert clock.now - t0 == pytest.approx(0.01)
    op.reply(answer())
    put = expect_put(op, core)  # a plain put: this caller holds no lease to release
    assert put.keys == entry_keys(core)
    op.reply([layout_ok(core), 1])
    assert flight.computed


def test_wait_timeout_zero_computes_at_once(clock: FakeClock) -> None:
    _f, op, _ = start(wait=0, clock=clock)
    lease_call(op, first=True)
    op.reply([HELD, 60_000])
    finish(op, "put")  # no Sleep first


def test_compute_raising_releases_the_lease_and_reraises(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _, token = granted(core, clock)
    boom = RuntimeError("the LLM failed")
    op.throw(boom)
    release = op.expect_call("release_lease")
    # delete it (marker 0 ms): the failure may be transient, a waiter may take the lease
    assert release.keys == (lease_key(core),) and release.args == (token, 0)
    with pytest.raises(RuntimeError, match="the LLM failed"):
        op.reply(1)
    assert flight.compute_error is boom and not flight.computed


def test_compute_raising_still_reraises_when_the_release_fails(clock: FakeClock) -> None:
    _f, op, _, _token = granted(make_core(), clock)
    op.throw(RuntimeError("the LLM failed"))
    op.expect_call("release_lease")
    with pytest.raises(RuntimeError, match="the LLM failed"):  # not the Redis fault
        op.throw(ConnectionError("redis went away"))


def test_compute_raising_without_a_lease_releases_nothing(clock: FakeClock) -> None:
    _f, op, _ = start(wait=0, clock=clock)
    lease_call(op, first=True)
    op.reply([HELD, 60_000])
    op.expect_compute()
    with pytest.raises(KeyError):
        op.throw(KeyError("x"))
    assert [s.script.name for s in op.trace if isinstance(s, Call)] == ["get_or_lease"]


def test_an_answer_too_large_to_store_is_returned_and_marks_the_lease_uncacheable(
    clock: FakeClock,
) -> None:
    """The answer is paid for: returned, and the refusal is a logged skip. The lease is
    replaced by the "uncacheable" marker (not deleted) for UNCACHEABLE_MARKER_MS, so the
    waiters compute at once instead of taking the lease one after another."""
    core = make_core(max_entry_bytes=100, compress_threshold=None)
    flight, op, refused, token = granted(core, clock)
    big = answer("x" * 500)
    op.reply(big)
    release = op.expect_call("release_lease")
    assert release.keys == (lease_key(core),)
    assert release.args == (token, UNCACHEABLE_MARKER_MS)
    assert UNCACHEABLE_MARKER_MS > 0
    op.reply(1)
    assert op.result == big and flight.computed
    assert len(refused) == 1 and isinstance(refused[0], EntryTooLargeError)
    assert [s.script.name for s in op.trace if isinstance(s, Call)] == [
        "get_or_lease",
        "renew_lease",  # the holder's confirmation of its short grant
        "release_lease",
    ]  # nothing stored


def test_compute_returning_a_non_model_is_returned_with_a_logged_skip(
    clock: FakeClock,
) -> None:
    """Not this cache's response model: it cannot be stored, but compute ran and its answer
    is returned as is (the refusal goes to ``refuse``, a logged skip with "miss"), with
    the lease marked uncacheable like any answer that cannot be stored."""
    flight, op, refused, token = granted(make_core(), clock)
    op.reply("not a response model")
    release = op.expect_call("release_lease")
    assert release.args == (token, UNCACHEABLE_MARKER_MS)
    op.reply(1)
    assert op.result == "not a response model"
    assert flight.computed and flight.compute_error is None
    assert len(refused) == 1 and isinstance(refused[0], TypeError)


def test_an_unstorable_answer_without_a_lease_releases_nothing(clock: FakeClock) -> None:
    core = make_core(max_entry_bytes=100, compress_threshold=None)
    _f, op, refused = start(core, wait=0, clock=clock)
    lease_call(op, first=True)
    op.reply([HELD, 60_000])
    op.expect_compute()
    big = answer("x" * 500)
    op.reply(big)
    assert op.result == big and len(refused) == 1
    assert [s.script.name for s in op.trace if isinstance(s, Call)] == ["get_or_lease"]


@pytest.mark.parametrize("polls", [0, 3])
def test_a_waiter_seeing_the_uncacheable_marker_computes_at_once(
    clock: FakeClock, polls: int
) -> None:
    """{4}: the last holder's answer could not be stored. At the first look or at a poll,
    the caller stops waiting, computes without a lease (nothing to renew) and puts."""
    core = make_core()
    flight, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    for _ in range(polls):
        op.reply([HELD, 60_000])
        op.expect_sleep()
        op.reply()
        lease_call(op, first=False)
    t0 = clock.now
    op.reply([UNCACHEABLE])
    assert op.expect_compute().renew is None  # no Sleep first, and no lease held
    assert clock.now == t0
    finish(op, "put", core)
    assert flight.computed and not flight.coalesced


def test_corrupt_entry_at_first_look_is_dropped_then_polled_again(clock: FakeClock) -> None:
    core = make_core()
    _f, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    raw = corrupt_envelopes(tokens=7)["bad msgpack"]
    op.reply([HIT, raw])
    drop = op.expect_call("drop_corrupt")  # undo the hit get_or_lease counted
    assert drop.args == (digest(), b"m1", raw, "1")  # "1": delete, count corrupt
    op.reply(1)
    lease_call(op, first=False)  # counted once already: the next look is a poll
    grant(op)
    finish(op)


def test_corrupt_entry_seen_while_waiting_undoes_the_coalesced_count(clock: FakeClock) -> None:
    core = make_core()
    _f, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    op.reply([HELD, 60_000])
    op.expect_sleep()
    op.reply()
    lease_call(op, first=False)
    raw = corrupt_envelopes(tokens=4)["not a map"]
    op.reply([HIT, raw])
    drop = op.expect_call("drop_coalesced")
    assert drop.keys == entry_keys(core) and drop.args == (digest(), b"m1", raw, "1")
    op.reply(1)
    lease_call(op, first=False)  # dropped: poll again
    grant(op)
    finish(op)


class Strict(LLMResponse):
    """A stricter response model (a newer release mid-rollout): ``content`` required."""

    content: str = Field(min_length=30)


@pytest.mark.parametrize("while_waiting", [False, True])
def test_an_entry_a_stricter_model_rejects_is_kept_and_computed_without_a_lease(
    clock: FakeClock, while_waiting: bool
) -> None:
    """Rejected (decodes, but not as this model): the hit is undone with mode "0" (kept for
    the readers whose model accepts it, counted rejected, not deleted). It will not go away,
    so the caller does not wait for it: it computes without a lease and puts its own."""
    raw = envelope(make_core(), answer("short", tokens=5))
    core = make_core(response_model=Strict)
    flight, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    if while_waiting:
        op.reply([HELD, 60_000])
        op.expect_sleep()
        op.reply()
        lease_call(op, first=False)
    op.reply([HIT, raw])
    if while_waiting:
        drop = op.expect_call("drop_coalesced")
        assert drop.args == (digest(), b"m1", raw, "0")
    else:
        drop = op.expect_call("drop_corrupt")
        assert drop.args == (digest(), b"m1", raw, "0")
    op.reply(0)  # kept
    assert op.expect_compute().renew is None  # no lease taken
    mine = Strict(content="an answer long enough for Strict", usage={"total_tokens": 3})
    op.reply(mine)
    payload = expect_put(op, core).args[1]
    assert isinstance(payload, bytes) and core.codec.decode(payload) == mine
    op.reply([layout_ok(core), 0])
    assert op.result == mine and flight.computed and not flight.coalesced


@pytest.mark.parametrize(
    ("lease", "wait", "error"),
    [
        (0, None, ValueError),
        (0.0001, None, ValueError),
        (float("inf"), None, ValueError),
        ("30", None, TypeError),
        (True, None, TypeError),
        (30, -1, ValueError),
        (30, "1", TypeError),
    ],
)
def test_bad_lease_or_wait_timeout_is_refused_before_any_io(
    lease: Any, wait: Any, error: type
) -> None:
    with pytest.raises(error):
        core = make_core()
        Flight(core, core.key_of_fields(FIELDS)[1], lease, wait, lambda exc: None)


def test_each_flight_has_its_own_lease_token() -> None:
    tokens = set()
    for _ in range(5):
        _f, op, _ = start()
        tokens.add(lease_call(op, first=True).args[3])
    assert len(tokens) == 5


def test_response_model_of_the_cache_is_what_a_hit_returns(clock: FakeClock) -> None:
    class Mine(LLMResponse):
        pass

    core = make_core(response_model=Mine)
    _f, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    op.reply([HIT, envelope(core, answer())])
    assert type(op.result) is Mine


@pytest.mark.parametrize("leased", [True, False])
def test_a_flight_put_seeing_another_layout_raises_after_the_answer_is_kept(
    clock: FakeClock, leased: bool
) -> None:
    """The flight's put re-asserts the layout too; another recorded layout raises
    ``LayoutMismatchError`` out of the op, with the computed answer already on the flight
    (the facade returns it under "miss": a paid-for answer is never lost)."""
    core = make_core(shards=2)
    flight, op, _ = start(core, wait=None if leased else 0, clock=clock)
    lease_call(op, first=True)
    if leased:
        grant(op)
    else:
        op.reply([HELD, 60_000])
    op.expect_compute()
    resp = answer("paid for")
    op.reply(resp)
    expect_put(op, core, "put_release" if leased else "put")
    with pytest.raises(LayoutMismatchError, match="shards=2"):
        op.reply([[b"fleetcache-1;shards=8", 0], [1, 1] if leased else 1])
    assert flight.computed and flight.response == resp and flight.compute_error is None
