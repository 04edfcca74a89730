"""The request path's per-call controls, driven with no server: ``get_or_compute_request``
is one ``RequestFlight`` whose script calls depend on its control (``default``: read under a
lease, then store; ``no-cache``: compute, then store; ``no-store``: read, compute on a miss,
never write; ``bypass``: compute only). The request is keyed once, when the flight is made.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleetcache.core import canonical
from fleetcache.core.envelope import MAGIC, decode_entry, encode_entry
from fleetcache.core.instructions import Batch, Call
from fleetcache.core.ops import Core
from fleetcache.core.request_ops import RequestFlight, request_key
from fleetcache.core.validate import CONTROLS, check_control

from ..support.core_data import layout_ok, make_core
from ..support.script_driver import FakeClock, ScriptedOp

REQUEST = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {"choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}]}
REFUSED = {"choices": [{"message": {"content": "cut"}, "finish_reason": "length"}]}


def start(
    control: str, core: Core | None = None, clock: FakeClock | None = None
) -> tuple[RequestFlight, ScriptedOp[Any], list[Exception]]:
    core = core or make_core()
    refused: list[Exception] = []
    flight = RequestFlight(
        core,
        request_key(core, REQUEST),
        30.0,
        None,
        refused.append,
        control=control,
        request=REQUEST,
    )
    return flight, ScriptedOp(flight.run(), clock), refused


def stored(core: Core) -> bytes:
    """A request-path entry holding ``ANSWER`` for ``REQUEST``."""
    return encode_entry(core, ANSWER, 0, request_key(core, REQUEST).digest)


def test_the_control_vocabulary_is_four_names_of_read_and_write() -> None:
    assert CONTROLS == {
        "default": (True, True),
        "no-cache": (False, True),
        "no-store": (True, False),
        "bypass": (False, False),
    }
    with pytest.raises(ValueError, match="control must be one of"):
        check_control("no_cache")


def test_an_unknown_control_is_refused_before_any_call() -> None:
    core = make_core()
    with pytest.raises(ValueError, match="control must be one of"):
        RequestFlight(core, request_key(core, REQUEST), 30.0, None, print, control="nocache")


def test_default_reads_under_a_lease_then_stores_and_releases(clock: FakeClock) -> None:
    core = make_core()
    flight, op, refused = start("default", core, clock)
    call = op.expect_call("get_or_lease")
    assert call.args[0] == flight.digest and call.args[2] == MAGIC
    op.reply([2])  # granted
    op.expect_call("renew_lease")  # the holder confirms its short grant
    op.reply(1)
    assert op.expect_compute().renew is not None  # a holder renews while computing
    op.reply(ANSWER)
    op.expect_batch("layout", "put_release")
    op.reply([layout_ok(core), [1, 1]])
    assert op.result == ANSWER and flight.computed and not refused


def test_default_returns_a_hit_without_computing(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start("default", core, clock)
    op.expect_call("get_or_lease")
    op.reply([1, stored(core)])
    assert op.result == ANSWER and not flight.computed


def test_no_cache_skips_the_read_computes_and_stores_without_a_lease(clock: FakeClock) -> None:
    core = make_core()
    flight, op, refused = start("no-cache", core, clock)
    assert op.expect_compute().renew is None  # first step: no read, no lease
    op.reply(ANSWER)
    put = op.expect_batch("layout", "put").calls[1]
    assert isinstance(put.args[1], bytes)
    data, _put_ms = decode_entry(put.args[1])
    assert data == ANSWER and put.args[0] == flight.digest
    op.reply([layout_ok(core), 1])
    assert op.result == ANSWER and flight.computed and not refused


def test_no_cache_counts_a_refused_answer_not_stored(clock: FakeClock) -> None:
    _flight, op, _ = start("no-cache", clock=clock)
    op.expect_compute()
    op.reply(REFUSED)
    call = op.expect_call("not_stored")
    assert call.args == ("",)  # no lease to give up
    op.reply(1)
    assert op.result == REFUSED


def test_no_store_reads_and_computes_a_miss_without_writing(clock: FakeClock) -> None:
    _flight, op, _ = start("no-store", clock=clock)
    get = op.expect_call("get")  # a plain read (counted), no lease
    assert get.args[1] == b"gpt-test"
    op.reply(None)
    assert op.expect_compute().renew is None
    op.reply(ANSWER)
    assert op.done and op.result == ANSWER  # nothing written, nothing counted


def test_no_store_returns_a_hit(clock: FakeClock) -> None:
    core = make_core()
    flight, op, _ = start("no-store", core, clock)
    op.expect_call("get")
    op.reply(stored(core))
    assert op.result == ANSWER and not flight.computed


def test_no_store_drops_a_corrupt_hit_and_computes(clock: FakeClock) -> None:
    core = make_core()
    _flight, op, _ = start("no-store", core, clock)
    op.expect_call("get")
    op.reply(MAGIC + b"\x00\x00not an entry")
    op.expect_call("drop_corrupt")
    op.reply(1)
    op.expect_compute()
    op.reply(ANSWER)
    assert op.done and op.result == ANSWER


def test_bypass_only_computes(clock: FakeClock) -> None:
    flight, op, _ = start("bypass", clock=clock)
    assert op.expect_compute().renew is None
    op.reply(ANSWER)
    assert op.done and op.result == ANSWER and len(op.trace) == 1
    assert not (flight.reads or flight.writes)


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_each_control_canonicalises_the_request_once(
    control: str, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    seen: list[object] = []
    real = canonical.canonical_json

    def counting(request: Any, **kw: Any) -> bytes:
        seen.append(request)
        return real(request, **kw)

    monkeypatch.setattr("fleetcache.core.request_ops.canonical_json", counting)
    core = make_core()
    _flight, op, _ = start(control, core, clock)
    replies = {"get_or_lease": [2], "renew_lease": 1, "get": None}
    while not op.done:  # a miss everywhere, then the fake compute's answer
        step = op.pending
        if isinstance(step, Call):
            op.reply(replies[step.script.name])
        elif isinstance(step, Batch):  # the put, after the layout re-assertion
            op.reply([layout_ok(core), [1, 1] if step.calls[1].script.name == "put_release" else 1])
        else:
            op.reply(ANSWER)
    assert op.result == ANSWER
    assert seen == [REQUEST]
