"""The instruction vocabulary of the pure core: what an operation yields and its driver runs.

An operation is a generator (``Op``/``StepOp``) that yields ``Call`` (run one script) or
``Batch`` (several in one round trip), and in single-flight also ``Sleep`` and ``Compute``;
the sync and async stores run each instruction and send its result back in.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .._lua import Script

T = TypeVar("T")


class Call:
    """Run one script: ``EVALSHA script.sha len(keys) *keys *args``.

    A plain slotted class rather than a frozen dataclass: one is built per request on the
    hot path, and a frozen dataclass's ``__init__`` costs about 1 us more.
    """

    __slots__ = ("args", "keys", "script")

    def __init__(
        self,
        script: Script,
        keys: tuple[str, ...],
        args: tuple[str | bytes | int | float, ...],
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args

    def __repr__(self) -> str:
        return f"Call({self.script.name!r}, keys={self.keys!r}, args={len(self.args)})"


@dataclass(frozen=True, slots=True)
class Batch:
    """Run several calls in one round trip per node (a non-transactional pipeline)."""

    calls: tuple[Call, ...]


Instruction = Call | Batch
Op = Generator[Instruction, Any, T]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (float s) without blocking other callers; receives ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Compute:
    """Call the user's ``compute()`` (awaited in asyncio); receives its result, or gets its
    exception thrown in (the op may release resources, then must re-raise it).

    ``renew`` [None]: while compute runs, the store runs this call every ``every`` seconds
    (float s > 0; a single-flight holder renewing its lease), concurrently: a task in
    asyncio, a timer thread in sync code. It stops at the first reply that is not 1 (the
    lease was lost) or at the first Redis error; its results never reach the op.
    """

    renew: Call | None = None
    every: float = 0.0


#: Anything an operation can yield: Redis I/O, or (single-flight only) a sleep or a compute.
Step = Instruction | Sleep | Compute
StepOp = Generator[Step, Any, T]
