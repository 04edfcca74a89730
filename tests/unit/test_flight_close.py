"""A single-flight op closed while it waits on ``compute()`` closes cleanly: it must not
try to yield its lease release from inside ``GeneratorExit`` (Python then raises
``RuntimeError: generator ignored GeneratorExit``); the lease simply expires."""

from __future__ import annotations

from fleetcache.core.flight import Flight
from fleetcache.core.instructions import Call, Compute

from ..support.core_data import make_core


def test_closing_a_flight_suspended_at_compute_is_clean() -> None:
    core = make_core()
    flight = Flight(
        core, core.key_of_fields(("q", "s", "m", 0.0, 16))[1], 30.0, None, lambda exc: None
    )
    op = flight.run()
    first = next(op)
    assert isinstance(first, Call) and first.script.name == "get_or_lease"
    step = op.send([2])  # lease granted: the holder confirms it, then computes
    assert isinstance(step, Call) and step.script.name == "renew_lease"
    step = op.send(1)
    assert isinstance(step, Compute)
    op.close()  # RuntimeError here before the fix
    assert flight.compute_error is None
