"""A scripted driver for the pure core: runs an op generator with no Redis and no sleeping.

The core's operations are generators that yield instructions (``Call``, ``Batch``, ``Sleep``,
``Compute``) and receive their results; the stores run them against Redis. Here the test is
the store: it reads each instruction the op yields, checks it, and sends the reply it
chooses (h11's state-machine tests work the same way: feed events, assert what comes out).

    op = ScriptedOp(op_get(core, fields))
    call = op.expect_call("get")        # the op asked to run get-3 (shape already checked)
    op.reply(envelope)                  # the server's answer
    assert op.result == response        # the op finished with this value

Every instruction is checked as it is yielded (``check_step``): a ``Call`` names a loaded
script, passes the number of KEYS and ARGV its Lua source reads (``lua_shape.call_shape``:
exactly, or ``fixed + per_item * n`` for variadic scripts), at most 1,000 keys, all in one
hash tag (one cluster slot), with plain ``str``/``bytes``/``int``/``float`` arguments; a
``Batch`` holds at least one ``Call`` and nothing else; a ``Sleep`` is finite and >= 0; a
``Compute`` that renews a lease carries a well-formed ``Call`` and a finite interval > 0.

Time: ``FakeClock`` stands in for ``time.monotonic`` (the test patches it into the module
under test); replying to a ``Sleep`` advances it by the sleep's length instead of sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Generator
from functools import cache
from typing import Any, Generic, TypeVar

from fleetcache._lua import load_scripts
from fleetcache.core.instructions import Batch, Call, Compute, Sleep, Step

from .lua_shape import CallShape, call_shape

T = TypeVar("T")

#: Most keys one script call may name (DESIGN.md rule 2).
MAX_KEYS = 1000
_TAG = re.compile(r"\{([^}]*)\}")


class FakeClock:
    """A monotonic clock that only moves when told (seconds, float)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a clock never goes back"
        self.now += seconds


@cache
def _shape(name: str) -> CallShape:
    return call_shape(load_scripts()[name].source)


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first ``{...}``, else the whole key."""
    m = _TAG.search(key)
    return m.group(1) if m and m.group(1) else key


def item_args(c: Call) -> list[tuple[Any, ...]]:
    """The per-item arguments of a variadic call (``get_many``: ``(digest, model)`` per
    entry), after its fixed ones: the split comes from the script's header."""
    shape = _shape(c.script.name)
    assert shape.variadic and shape.per_item, f"{c.script.name} takes no items"
    rest = c.args[shape.argv :]
    n = shape.per_item
    return [tuple(rest[i : i + n]) for i in range(0, len(rest), n)]


def fixed_args(c: Call) -> tuple[Any, ...]:
    """The fixed arguments of a call (all of them for a non-variadic script)."""
    shape = _shape(c.script.name)
    return c.args[: shape.argv] if shape.variadic else c.args


def check_call(c: Call) -> None:
    """Assert that one ``Call`` is a well-formed call of a loaded script."""
    assert isinstance(c, Call), f"expected a Call, got {c!r}"
    scripts = load_scripts()
    assert c.script.name in scripts, f"unknown script {c.script.name!r}"
    assert c.script == scripts[c.script.name], f"{c.script.name}: not the loaded script"
    assert isinstance(c.keys, tuple) and isinstance(c.args, tuple), "keys/args are tuples"
    assert 1 <= len(c.keys) <= MAX_KEYS, f"{c.script.name}: {len(c.keys)} keys"
    problems = _shape(c.script.name).problems(len(c.keys), len(c.args))
    assert not problems, f"{c.script.name}: {'; '.join(problems)}"
    for k in c.keys:
        assert isinstance(k, str) and k, f"{c.script.name}: key {k!r} is not a str"
    tags = {hash_tag(k) for k in c.keys}
    assert len(tags) == 1, f"{c.script.name}: keys in several hash tags {sorted(tags)}"
    for a in c.args:
        assert isinstance(a, (str, bytes, int, float)) and not isinstance(a, bool), (
            f"{c.script.name}: argument {a!r} ({type(a).__name__}) is not str/bytes/int/float"
        )


def check_step(step: object) -> None:
    """Assert that ``step`` is an instruction a store can run."""
    if isinstance(step, Call):
        check_call(step)
    elif isinstance(step, Batch):
        assert isinstance(step.calls, tuple) and step.calls, "a Batch holds at least one Call"
        for c in step.calls:
            check_call(c)
    elif isinstance(step, Sleep):
        assert math.isfinite(step.seconds) and step.seconds >= 0, f"bad {step!r}"
    else:
        assert isinstance(step, Compute), f"not an instruction: {step!r}"
        if step.renew is not None:
            check_call(step.renew)
            assert math.isfinite(step.every) and step.every > 0, f"bad renewal {step!r}"


class ScriptedOp(Generic[T]):
    """One op generator, stepped by the test: each yielded step is checked and recorded in
    ``trace``; ``reply``/``throw`` answer it; ``result`` is the op's return value.

    An exception the op raises comes out of ``reply``/``throw`` (or the constructor, for one
    raised before the first step) unchanged.
    """

    def __init__(self, op: Generator[Any, Any, T], clock: FakeClock | None = None) -> None:
        self._op = op
        self.clock = clock
        self.trace: list[Step] = []
        self._pending: Step | None = None
        self._done = False
        self._value: Any = None
        self._step(lambda: next(op))

    def _step(self, advance: Callable[[], Any]) -> None:
        try:
            step = advance()
        except StopIteration as stop:
            self._done = True
            self._pending = None
            self._value = stop.value
            return
        check_step(step)
        self.trace.append(step)
        self._pending = step

    # -- what the op asks for -----------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    @property
    def pending(self) -> Step:
        """The instruction waiting for an answer."""
        assert not self._done, f"the op already returned {self._value!r}"
        assert self._pending is not None
        return self._pending

    @property
    def result(self) -> T:
        """The op's return value (it must have finished)."""
        assert self._done, f"the op is still waiting on {self._pending!r}"
        return self._value  # type: ignore[no-any-return]

    def expect_call(self, name: str) -> Call:
        """The pending step, which must be a ``Call`` of script ``name``."""
        step = self.pending
        assert isinstance(step, Call), f"expected Call({name!r}), got {step!r}"
        assert step.script.name == name, f"expected Call({name!r}), got {step!r}"
        return step

    def expect_batch(self, *names: str) -> Batch:
        """The pending step, a ``Batch``; with ``names``, exactly those scripts in order."""
        step = self.pending
        assert isinstance(step, Batch), f"expected a Batch, got {step!r}"
        if names:
            assert tuple(c.script.name for c in step.calls) == names, step
        return step

    def expect_sleep(self) -> float:
        """The pending step, a ``Sleep``: its length in seconds."""
        step = self.pending
        assert isinstance(step, Sleep), f"expected a Sleep, got {step!r}"
        return step.seconds

    def expect_compute(self) -> Compute:
        """The pending step, a ``Compute`` (its ``renew`` call, if any, already checked)."""
        step = self.pending
        assert isinstance(step, Compute), f"expected Compute, got {step!r}"
        return step

    # -- answering ----------------------------------------------------------------------

    def reply(self, value: Any = None) -> None:
        """Send the pending step's result. A ``Batch`` takes one result per call; a
        ``Sleep`` takes ``None`` and advances the fake clock by its length."""
        step = self.pending
        if isinstance(step, Batch):
            assert isinstance(value, list) and len(value) == len(step.calls), (
                f"a Batch of {len(step.calls)} calls needs as many results, got {value!r}"
            )
        if isinstance(step, Sleep):
            assert value is None, "a Sleep receives None"
            if self.clock is not None:
                self.clock.advance(step.seconds)
        self._step(lambda: self._op.send(value))

    def throw(self, exc: BaseException) -> None:
        """Throw ``exc`` into the op at the pending step (a Redis fault, compute raising)."""
        assert not self._done, f"the op already returned {self._value!r}"
        self._step(lambda: self._op.throw(exc))

    def close(self) -> None:
        self._op.close()


def run_op(
    op: Generator[Any, Any, T],
    respond: Callable[[Step], Any],
    *,
    clock: FakeClock | None = None,
    max_steps: int = 100_000,
) -> tuple[T, list[Step]]:
    """Run ``op`` to its end, answering each step with ``respond(step)``; returns the op's
    value and its trace. ``max_steps`` bounds a loop that would not end."""
    s = ScriptedOp(op, clock)
    while not s.done:
        assert len(s.trace) <= max_steps, f"the op made over {max_steps} steps"
        s.reply(respond(s.pending))
    return s.result, s.trace
