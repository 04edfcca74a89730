"""The scripted driver's own checks fail on malformed instructions (so the core's unit tests
that pass through them mean something)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from fleetcache._lua import script
from fleetcache.core.instructions import Batch, Call, Compute, Sleep

from ..support.script_driver import FakeClock, ScriptedOp, check_step, run_op

GET = script("get")
KEYS3 = ("{t:0}:e:d", "{t:0}:i", "{t:0}:s")
RENEW = script("renew_lease")


@pytest.mark.parametrize(
    ("step", "complaint"),
    [
        (Call(GET, KEYS3[:2], ("d", b"m", b"FC\x01")), "2 keys, the script takes 3"),
        (Call(GET, KEYS3, ("d", b"m")), "2 arguments, the script takes 3"),
        (Call(GET, ("{t:0}:e:d", "{t:1}:i", "{t:0}:s"), ("d", b"m", b"FC")), "hash tags"),
        (Call(GET, KEYS3, ("d", True, b"FC")), "not str/bytes/int/float"),
        (Call(GET, KEYS3, ("d", None, b"FC")), "not str/bytes/int/float"),  # type: ignore[arg-type]
        (Call(script("get_many"), ("{t:0}:i", "{t:0}:s", "{t:0}:e:a"), (b"FC", "a")), "for 1"),
        (
            Call(script("get_many"), ("{t:0}:i",) * 1001, (b"FC",) + ("a", b"m") * 999),
            "1001 keys",
        ),
        (Batch(()), "at least one Call"),
        (Sleep(float("nan")), "bad Sleep"),
        (Compute(Call(RENEW, ("{t:0}:l:d",), ("tok",)), 1.0), "1 arguments, the script takes 2"),
        (Compute(Call(RENEW, ("{t:0}:l:d",), ("tok", 1000)), 0.0), "bad renewal"),
        (Compute(Call(RENEW, ("{t:0}:l:d",), ("tok", 1000)), float("inf")), "bad renewal"),
        ("EVALSHA", "not an instruction"),
    ],
)
def test_malformed_instructions_fail(step: Any, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        check_step(step)


def test_well_formed_instructions_pass() -> None:
    check_step(Call(GET, KEYS3, ("d", b"m", b"FC\x01")))
    gm = script("get_many")
    check_step(Batch((Call(gm, ("{t:0}:i", "{t:0}:s", "{t:0}:e:a"), (b"FC", "a", b"m")),)))
    check_step(Sleep(0.0))
    check_step(Compute())
    check_step(Compute(Call(RENEW, ("{t:0}:l:d",), ("tok", 1000)), 0.01))


def _op() -> Generator[Any, Any, str]:
    got = yield Call(GET, KEYS3, ("d", b"m", b"FC\x01"))
    yield Sleep(0.5)
    return f"got {got!r}"


def test_sleep_moves_the_fake_clock_and_result_is_the_return_value() -> None:
    clock = FakeClock(10.0)
    op = ScriptedOp(_op(), clock)
    with pytest.raises(AssertionError, match="expected Call"):
        op.expect_call("put")
    op.reply(b"x")
    assert op.expect_sleep() == 0.5
    with pytest.raises(AssertionError, match="still waiting"):
        _ = op.result
    op.reply()
    assert clock.now == 10.5 and op.result == "got b'x'"


def test_run_op_bounds_an_op_that_never_ends() -> None:
    def forever() -> Generator[Any, Any, None]:
        while True:
            yield Sleep(0.001)

    with pytest.raises(AssertionError, match="over 50 steps"):
        run_op(forever(), lambda _s: None, max_steps=50)
