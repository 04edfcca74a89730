"""Single-flight (``get_or_compute``) in the pure core, branch by branch, run by the scripted
driver with a fake clock: no Redis, no real sleep. Each test feeds the replies of
``get_or_lease-4`` ({1, bytes} hit, {2} lease granted, {3, pttl} lease held elsewhere) and
asserts what the flight asks for next: a Compute, a put, a release, or a Sleep of how long."""

from __future__ import annotations

from typing import Any

import pytest

from fleetcache._bulk import Flight
from fleetcache._core import Call, Core, Sleep
from fleetcache._models import LLMResponse
from fleetcache.errors import EntryTooLargeError

from ..support.core_data import (
    FIELDS,
    answer,
    corrupt_envelopes,
    digest,
    entry_keys,
    envelope,
    lease_key,
    make_core,
)
from ..support.script_driver import FakeClock, ScriptedOp

HIT, GRANTED, HELD = 1, 2, 3
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
    flight = Flight(core, FIELDS, lease, wait, refused.append)
    return flight, ScriptedOp(flight.run(), clock), refused


def granted(
    core: Core, clock: FakeClock
) -> tuple[Flight, ScriptedOp[Any], list[Exception], str | bytes | int | float]:
    """A flight whose first look is a miss with the lease granted: it now asks to Compute.
    Returns the flight, its driver, what it refused, and its lease token."""
    flight, op, refused = start(core, clock=clock)
    token = lease_call(op, first=True).args[3]
    op.reply([GRANTED])
    op.expect_compute()
    return flight, op, refused, token


def lease_call(op: ScriptedOp[Any], *, first: bool) -> Call:
    call = op.expect_call("get_or_lease")
    assert call.args[5] == ("1" if first else "0")  # first look counts hit/miss; polls do not
    return call


def finish(op: ScriptedOp[Any], store: str = "put_release") -> None:
    """Answer a pending Compute and the call storing its answer (``put_release`` with a
    lease, ``put`` without). A flight is never left suspended at a Compute: closing it
    there would run its release path."""
    op.expect_compute()
    op.reply(answer())
    op.expect_call(store)
    op.reply(1)
    assert op.done


def test_lease_call_names_entry_and_lease_keys_and_the_lease_in_ms(clock: FakeClock) -> None:
    core = make_core()
    _f, op, _ = start(core, lease=1.5, clock=clock)
    call = lease_call(op, first=True)
    assert call.keys == (*entry_keys(core), lease_key(core))
    d, model, _magic, token, lease_ms, _mode = call.args
    assert (d, model, lease_ms) == (digest(), b"m1", 1500)
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
    put = op.expect_call("put_release")
    assert put.keys == (*entry_keys(core), lease_key(core))
    d, payload, ttl_ms, _prune, tok, cap = put.args
    assert (d, ttl_ms, tok, cap) == (digest(), 60_000, token, 0)  # released only if ours
    assert isinstance(payload, bytes) and core.codec.decode(payload) == resp
    op.reply(1)
    assert op.result == resp and flight.computed and flight.response == resp


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
    op.reply([GRANTED])  # the holder died: the lease is ours now
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
    op.expect_compute()
    # 2 + 3 + 4.5 ms, then only the 0.5 ms left: no sleep goes past the deadline
    assert slept == pytest.approx([0.002, 0.003, 0.0045, 0.0005])
    assert clock.now - t0 == pytest.approx(0.01)
    op.reply(answer())
    put = op.expect_call("put")  # a plain put: this caller holds no lease to release
    assert put.keys == entry_keys(core)
    op.reply(1)
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
    assert release.keys == (lease_key(core),) and release.args == (token,)
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


def test_an_answer_too_large_to_store_is_returned_and_the_lease_released(
    clock: FakeClock,
) -> None:
    core = make_core(max_entry_bytes=100, compress_threshold=None)
    flight, op, refused, _token = granted(core, clock)
    big = answer("x" * 500)
    op.reply(big)
    op.expect_call("release_lease")
    op.reply(1)
    assert op.result == big and flight.computed
    assert len(refused) == 1 and isinstance(refused[0], EntryTooLargeError)


def test_compute_returning_a_non_model_releases_and_raises(clock: FakeClock) -> None:
    flight, op, _, _token = granted(make_core(), clock)
    op.reply("not a response model")
    op.expect_call("release_lease")
    with pytest.raises(TypeError):
        op.reply(1)
    assert isinstance(flight.compute_error, TypeError)


def test_corrupt_entry_at_first_look_is_dropped_then_polled_again(clock: FakeClock) -> None:
    core = make_core()
    _f, op, _ = start(core, clock=clock)
    lease_call(op, first=True)
    raw = corrupt_envelopes(tokens=7)["bad msgpack"]
    op.reply([HIT, raw])
    drop = op.expect_call("drop_corrupt")  # undo the hit get_or_lease counted
    assert drop.args == (digest(), b"m1", 7, raw)
    op.reply(1)
    lease_call(op, first=False)  # counted once already: the next look is a poll
    op.reply([GRANTED])
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
    assert drop.keys == entry_keys(core) and drop.args == (digest(), 4, raw)


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
        Flight(make_core(), FIELDS, lease, wait, lambda exc: None)


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
