"""Threads for the fault scenarios: a group of daemon workers started by ``with`` and stopped
(``stop`` set, each joined for up to 10 s) when the block ends, and ``wait_until``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self


class ThreadGroup:
    """Subclasses call :meth:`spawn` in ``__init__``; their loops watch ``stop``."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def spawn(self, n: int, target: Callable[..., None], *args: Any) -> None:
        """``n`` threads running ``target(w, *args)`` for w in 0..n-1 (not started yet)."""
        self.threads = [
            threading.Thread(target=target, args=(w, *args), daemon=True) for w in range(n)
        ]

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def wait_until(pred: Callable[..., object], timeout: float = 10.0) -> bool:
    """Poll ``pred()`` every 20 ms until it is true (``True``) or ``timeout`` s pass (``False``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False
