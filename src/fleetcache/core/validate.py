"""Checks of the numbers a caller passes in: one set of functions used by the constructor,
``put``/``put_many`` (TTL), ``get_or_compute`` (lease, wait), the error policy (breaker), the
client builder (timeouts) and the codec (byte limits). Pure: no I/O.

The per-call cache controls (``CONTROLS``) live here too: the caches' ``control=``, the
HTTP transport's ``x-fleetcache-control`` header and LiteLLM's ``cache={...}`` options all
speak this one vocabulary.

Every check raises ``TypeError`` for a value of the wrong type (a ``bool`` is never a
number here) and ``ValueError`` for one out of range, naming the parameter and the range.
"""

from __future__ import annotations

import math

#: Longest TTL or lease the server can honour exactly, in seconds (1e12 s, about 31,700
#: years). Expiries are absolute server times in ms computed inside Lua, whose numbers are
#: doubles: ``now + ttl`` must stay an exact integer (< 2**53 ms) and a form ``SET ... PXAT``
#: and ``ZADD`` accept; 1e15 s (1e18 ms) is already refused by Redis.
MAX_SECONDS = 1e12
#: The same limit in milliseconds.
MAX_MS = int(MAX_SECONDS * 1000)


def number(value: object, name: str) -> float:
    """``value`` as a float: an ``int`` or ``float`` (not a ``bool``), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large: at most {MAX_SECONDS:g} s") from None


def seconds(value: object, name: str, *, minimum: float = 0.0, inclusive: bool = False) -> float:
    """A finite number of seconds above ``minimum`` (or equal to it when ``inclusive``) and
    at most ``MAX_SECONDS``."""
    v = number(value, name)
    low_ok = v >= minimum if inclusive else v > minimum
    if not math.isfinite(v) or not low_ok:
        rel = ">=" if inclusive else ">"
        raise ValueError(
            f"{name} must be a finite number of seconds {rel} {minimum:g}; got {value!r}"
        )
    if v > MAX_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_SECONDS:g} s (about 31,700 years): the server "
            f"cannot honour a later expiry; got {value!r}"
        )
    return v


def milliseconds(value: object, name: str) -> int:
    """A duration in seconds (float, millisecond precision, 0.001 s .. ``MAX_SECONDS``) in
    integer milliseconds."""
    v = seconds(value, name)
    ms = round(v * 1000)
    if ms < 1:
        raise ValueError(f"{name} must be at least 0.001 s (millisecond precision); got {value!r}")
    return ms


def ttl_ms(value: object, name: str = "ttl_seconds") -> int:
    """An entry TTL (float s, ms precision, or ``None`` = no expiry) in ms; ``None`` -> 0."""
    if value is None:
        return 0
    return milliseconds(value, name)


def optional_seconds(value: object, name: str) -> float | None:
    """``None``, or a finite number of seconds >= 0 (a wait, a deadline)."""
    if value is None:
        return None
    return seconds(value, name, inclusive=True)


def timeout(value: object, name: str) -> float:
    """A socket timeout: a finite number of seconds > 0."""
    return seconds(value, name)


def byte_count(value: object, name: str, *, minimum: int = 0) -> int:
    """A size in bytes: an ``int`` (not a ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes), not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum} bytes; got {value!r}")
    return value


def optional_byte_count(value: object, name: str, *, minimum: int = 0) -> int | None:
    """``None``, or a size in bytes >= ``minimum``."""
    return None if value is None else byte_count(value, name, minimum=minimum)


def upstream_ms(value: object, name: str = "upstream_ms") -> int:
    """An upstream duration in integer milliseconds: an ``int`` >= 0 (a ``float`` is
    rounded to the nearest ms); stored clamped to 2**32-1 ms (about 49 days)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of milliseconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of milliseconds >= 0; got {value!r}")
    return min(round(value), 0xFFFFFFFF)


#: The per-call cache controls: ``(reads, writes)`` of each.
CONTROLS: dict[str, tuple[bool, bool]] = {
    "default": (True, True),  # read, then store what was computed
    "no-cache": (False, True),  # skip the read, store the fresh answer (a refresh)
    "no-store": (True, False),  # read, never write
    "bypass": (False, False),  # neither: the cache is not touched
}


def check_control(control: object) -> tuple[bool, bool]:
    """``(reads, writes)`` of a control; ``ValueError`` for an unknown one."""
    try:
        return CONTROLS[control]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError(
            f"control must be one of {', '.join(map(repr, CONTROLS))}, not {control!r}"
        ) from None


def control_of(reads: bool, writes: bool) -> str:
    """The control whose ``(reads, writes)`` these are."""
    for name, rw in CONTROLS.items():
        if rw == (reads, writes):
            return name
    raise AssertionError("unreachable: CONTROLS covers every pair")  # pragma: no cover
